// Reconnect pacing (actors/backoff.hpp): deterministic, with the randomness and the time passed in.
#include "actors/backoff.hpp"

#include <random>

#include <gtest/gtest.h>

namespace certfleet {
namespace {

using namespace std::chrono_literals;

// Jitter at its maximum: each delay is the current ceiling.
uint64_t ceiling(uint64_t max) {
  return max;
}

backoff_policy policy() {
  return backoff_policy{100ms, 1000ms, 5000ms};
}

TEST(reconnect_backoff, each_failure_doubles_the_ceiling_up_to_the_cap) {
  reconnect_backoff b{policy()};
  std::vector<int64_t> delays;
  for (int i = 0; i < 6; ++i) delays.push_back(b.next_delay(ceiling).count());
  EXPECT_EQ(delays, (std::vector<int64_t>{100, 200, 400, 800, 1000, 1000}));
  EXPECT_EQ(b.failures(), 6u);
}

TEST(reconnect_backoff, the_delay_is_drawn_uniformly_below_the_ceiling) {
  reconnect_backoff b{policy()};
  uint64_t asked = 0;
  auto d = b.next_delay([&](uint64_t max) {
    asked = max;
    return max / 4;
  });
  EXPECT_EQ(asked, 100u);
  EXPECT_EQ(d, 25ms);
}

TEST(reconnect_backoff, a_completed_handshake_alone_does_not_reset_it) {
  reconnect_backoff b{policy()};
  int64_t now = 1'000'000;
  for (int i = 0; i < 4; ++i) {
    b.next_delay(ceiling);
    b.connected(now);
    now += 50;  // up for 50 ms, then closed by the server
    b.disconnected(now);
  }
  EXPECT_EQ(b.failures(), 4u);
  EXPECT_EQ(b.next_delay(ceiling), 1000ms) << "still growing towards the cap";
}

TEST(reconnect_backoff, a_connection_up_for_the_healthy_time_resets_it) {
  reconnect_backoff b{policy()};
  for (int i = 0; i < 5; ++i) b.next_delay(ceiling);
  b.connected(10'000);
  b.disconnected(14'999);
  EXPECT_EQ(b.failures(), 5u) << "one millisecond short";
  b.connected(20'000);
  b.disconnected(25'000);
  EXPECT_EQ(b.failures(), 0u);
  EXPECT_EQ(b.next_delay(ceiling), 100ms);
}

TEST(reconnect_backoff, a_completed_collection_or_registration_resets_it) {
  reconnect_backoff b{policy()};
  for (int i = 0; i < 5; ++i) b.next_delay(ceiling);
  b.connected(0);
  b.healthy();
  EXPECT_EQ(b.failures(), 0u);
  EXPECT_EQ(b.next_delay(ceiling), 100ms);
}

TEST(reconnect_backoff, a_disconnect_without_a_connection_changes_nothing) {
  reconnect_backoff b{policy()};
  b.next_delay(ceiling);
  b.disconnected(1'000'000);
  EXPECT_EQ(b.failures(), 1u);
}

// The figure in docs/reliability.md, "Flapping servers": the defaults (1 s initial, 5 min cap), a
// server that completes TLS and closes at once, forever, with uniform jitter.
TEST(reconnect_backoff, a_permanently_flapping_server_is_bounded_by_the_cap) {
  reconnect_backoff b{backoff_policy{1000ms, 300000ms, 60000ms}};
  std::mt19937_64 rng{42};
  auto uniform = [&](uint64_t max) { return std::uniform_int_distribution<uint64_t>{0, max}(rng); };
  int64_t now = 0;
  int first_hour = 0;
  int total = 0;
  const int64_t day = 24 * 3600 * 1000;
  while (now < day) {
    b.connected(now);
    b.disconnected(now + 20);  // a handshake, then the server closes
    ++total;
    if (now < 3600 * 1000) ++first_hour;
    now += 20 + b.next_delay(uniform).count();
  }
  // Before: about 2 handshakes a second (7,200 an hour). Now: the ramp to the cap, then one
  // every 150 s on average.
  EXPECT_LT(first_hour, 40);
  EXPECT_GT(total, 24 * 15);
  EXPECT_LT(total, 24 * 35);
  std::cout << "flapping server: " << first_hour << " handshakes in the first hour, " << total
            << " in 24 h (" << static_cast<double>(total) / (24 * 60) << " per minute)\n";
}

TEST(connectivity_limiter, records_at_most_the_allowed_cycles_per_window) {
  connectivity_limiter l{3, 1h};
  int64_t now = 0;
  int recorded_ups = 0, recorded_downs = 0;
  for (int i = 0; i < 10; ++i) {
    if (l.up(now)) ++recorded_ups;
    if (l.down()) ++recorded_downs;
    now += 1000;
  }
  EXPECT_EQ(recorded_ups, 3);
  EXPECT_EQ(recorded_downs, 3) << "a left-out up leaves out its down";
}

TEST(connectivity_limiter, the_next_recorded_up_counts_the_cycles_left_out) {
  connectivity_limiter l{2, 1h};
  for (int i = 0; i < 7; ++i) {
    l.up(i * 1000);
    l.down();
  }
  EXPECT_EQ(l.take_suppressed(), 5u);
  EXPECT_EQ(l.take_suppressed(), 0u);
  for (int i = 0; i < 3; ++i) {
    l.up(10'000 + i);
    l.down();
  }
  ASSERT_TRUE(l.up(3'600'000 + 2'000)) << "the window moved past the recorded ups";
  EXPECT_EQ(l.take_suppressed(), 3u);
}

TEST(connectivity_limiter, a_down_while_up_was_recorded_is_recorded_once) {
  connectivity_limiter l{1, 1h};
  ASSERT_TRUE(l.up(0));
  EXPECT_TRUE(l.down());
  EXPECT_FALSE(l.down());
}

}  // namespace
}  // namespace certfleet
