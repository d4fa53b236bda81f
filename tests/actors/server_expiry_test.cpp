// The watchlist behind `server_certificate_expiring` (actors/server_expiry.hpp), with the time as
// an argument: no actor, no clock.
#include "actors/server_expiry.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace certfleet {
namespace {

using namespace std::chrono_literals;
using days = std::chrono::duration<int64_t, std::ratio<86400>>;

const wall_time t0 = wall_time{} + days{20000};  // 2024-10-04T00:00:00Z

watched_certificate cert(const std::string& id, wall_time not_after, bool warned = false) {
  return {id, "SHA256:" + id, not_after - days{365}, not_after, warned};
}

server_expiry_watchlist list() {
  return server_expiry_watchlist{300s, 30};
}

TEST(server_expiry_watchlist, nothing_is_due_before_the_window_opens) {
  auto l = list();
  l.watch(cert("s-1", t0 + days{31}));
  EXPECT_TRUE(l.due(t0).empty());
  EXPECT_TRUE(l.due(t0 + days{1} - 1s).empty());
}

TEST(server_expiry_watchlist, a_certificate_entering_its_window_is_warned_about_once) {
  auto l = list();
  l.watch(cert("s-1", t0 + days{31}));
  auto due = l.due(t0 + days{1});
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].server_id, "s-1");
  EXPECT_EQ(due[0].thumbprint, "SHA256:s-1");
  EXPECT_EQ(due[0].days_left, 30);
  EXPECT_FALSE(due[0].expired);
  EXPECT_TRUE(l.due(t0 + days{2}).empty()) << "not repeated on later ticks";
  EXPECT_TRUE(l.due(t0 + days{1}).empty()) << "nor after the clock went back";
}

TEST(server_expiry_watchlist,
     a_certificate_already_warned_about_is_not_warned_again_after_a_restart) {
  auto l = list();
  l.watch(cert("s-1", t0 + days{10}, true));
  EXPECT_TRUE(l.due(t0).empty());
}

TEST(server_expiry_watchlist, a_clock_jump_forward_gives_one_warning_per_certificate) {
  auto l = list();
  l.watch(cert("s-1", t0 + days{40}));
  l.watch(cert("s-2", t0 + days{50}));
  l.watch(cert("s-3", t0 + days{200}));
  auto due = l.due(t0 + days{25});
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].server_id, "s-1");
  EXPECT_EQ(due[0].days_left, 15);
  EXPECT_EQ(due[1].server_id, "s-2");
}

TEST(server_expiry_watchlist, a_new_pin_starts_over_and_an_unwatched_server_is_forgotten) {
  auto l = list();
  l.watch(cert("s-1", t0 + days{10}));
  ASSERT_EQ(l.due(t0).size(), 1u);
  auto renewed = cert("s-1", t0 + days{400});
  renewed.thumbprint = "SHA256:renewed";
  l.watch(renewed);
  EXPECT_TRUE(l.due(t0 + days{300}).empty());
  auto due = l.due(t0 + days{371});
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].thumbprint, "SHA256:renewed");
  l.watch(cert("s-2", t0 + days{10}));
  l.unwatch("s-2");
  EXPECT_TRUE(l.due(t0 + days{5}).empty());
  EXPECT_EQ(l.size(), 1u);
}

TEST(server_expiry_watchlist, past_not_after_it_warns_within_the_tolerance_and_not_beyond) {
  auto within = list();
  within.watch(cert("s-1", t0));
  auto due = within.due(t0 + 300s);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_TRUE(due[0].expired);
  EXPECT_EQ(due[0].days_left, -1);
  auto beyond = list();
  beyond.watch(cert("s-1", t0));
  EXPECT_TRUE(beyond.due(t0 + 301s).empty()) << "refused at the handshake instead";
}

TEST(server_expiry_watchlist, a_window_that_opens_before_the_certificate_is_valid_waits_for_it) {
  auto l = list();
  // Valid for ten days from t0 + 1 day: the 30-day window opens before notBefore.
  l.watch({"s-1", "SHA256:s-1", t0 + days{1}, t0 + days{11}, false});
  EXPECT_TRUE(l.due(t0).empty());
  auto due = l.due(t0 + days{1} - 300s);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].days_left, 10);
}

TEST(server_expiry_watchlist, the_event_details_and_the_log_line_name_the_certificate) {
  expiry_warning w{"s-1", "SHA256:AB", 20, "2027-06-01T00:00:00Z", false};
  nlohmann::json j;
  to_json(j, w);
  EXPECT_EQ(j, (nlohmann::json{{"thumbprint", "SHA256:AB"},
                               {"not_after", "2027-06-01T00:00:00Z"},
                               {"days_left", 20},
                               {"expired", false}}));
  auto line = describe(w);
  EXPECT_NE(line.find("s-1"), std::string::npos);
  EXPECT_NE(line.find("expires at 2027-06-01T00:00:00Z (20 days left)"), std::string::npos) << line;
}

}  // namespace
}  // namespace certfleet
