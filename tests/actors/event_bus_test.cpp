// The event bus with a real store (RocksDB in a temp dir) and a real actor system.
#include "actors/event_bus.hpp"

#include <condition_variable>
#include <mutex>

#include <gtest/gtest.h>
#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/context.hpp"
#include "crypto/identity.hpp"
#include "crypto/sealing.hpp"
#include "storage/state_store.hpp"
#include "tests/support/temp_dir.hpp"

namespace certfleet {
namespace {

event_record connection_up(size_t n) {
  event_record e;
  e.type = "connection_up";
  e.server_id = "s-" + std::to_string(n);
  e.address = "10.0.0." + std::to_string(n % 250 + 1) + ":9401";
  e.details = "{}";
  return e;
}

std::vector<event_record> batch(size_t count) {
  std::vector<event_record> out;
  for (size_t i = 0; i < count; ++i) out.push_back(connection_up(i));
  return out;
}

/// Collects what a subscriber receives.
struct collector {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<uint64_t> seqs;

  bool on_event(const event_record& e) {
    std::lock_guard<std::mutex> lock{mtx};
    seqs.push_back(e.seq);
    cv.notify_all();
    return true;
  }
  bool wait_for(size_t n) {
    std::unique_lock<std::mutex> lock{mtx};
    return cv.wait_for(lock, std::chrono::seconds{10}, [&] { return seqs.size() >= n; });
  }
};

class event_bus_test : public ::testing::Test {
 protected:
  void SetUp() override {
    settings cfg;
    cfg.state_dir = dir_.path();
    auto key = master_key::create(dir_.path() / "master.key");
    ASSERT_TRUE(key);
    auto id = identity::generate({"event-bus-test", "certfleet"}, std::chrono::hours{1}, "m");
    ASSERT_TRUE(id);
    ctx_ = std::make_shared<daemon_context>(cfg, std::move(*key), std::move(*id));
    auto store = state_store::open(dir_.path() / "state");
    ASSERT_TRUE(store);
    ctx_->store = std::move(*store);
    sys_cfg_.set("logger.console-verbosity", caf::atom("quiet"));
    sys_ = std::make_unique<caf::actor_system>(sys_cfg_);
    ctx_->bus = spawn_event_bus(*sys_, ctx_);
  }

  void TearDown() override {
    caf::anon_send(ctx_->bus, stop_atom::value);
    sys_->await_all_actors_done();
    ctx_->bus = caf::actor{};
    sys_.reset();
    ctx_->store.reset();
  }

  std::vector<event_record> append(size_t n) {
    auto stored = ctx_->store->append_events(batch(n));
    EXPECT_TRUE(stored);
    return stored ? *stored : std::vector<event_record>{};
  }

  std::unique_ptr<event_subscription> subscribe(collector& c, uint64_t since) {
    auto sub = subscribe_events(
        *sys_, ctx_->bus, since, {}, [&c](const event_record& e) { return c.on_event(e); },
        [](uint64_t, const std::string&) {});
    EXPECT_TRUE(sub);
    return sub ? std::move(*sub) : nullptr;
  }

  static void expect_gap_free(const std::vector<uint64_t>& seqs, uint64_t first) {
    for (size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], first + i) << "at " << i;
  }

  test::temp_dir dir_;
  context_ptr ctx_;
  caf::actor_system_config sys_cfg_;
  std::unique_ptr<caf::actor_system> sys_;
};

TEST_F(event_bus_test, batches_arriving_out_of_order_are_published_in_seq_order) {
  collector c;
  auto sub = subscribe(c, 0);
  auto first = append(3);
  auto second = append(4);
  // The later batch reaches the bus first, as when two actors store at the same moment.
  caf::anon_send(ctx_->bus, published_atom::value, second);
  caf::anon_send(ctx_->bus, published_atom::value, first);
  ASSERT_TRUE(c.wait_for(7));
  expect_gap_free(c.seqs, 1);
  EXPECT_EQ(c.seqs.size(), 7u);
}

TEST_F(event_bus_test, seq_only_and_batch_publishers_mix_without_gaps) {
  collector c;
  auto sub = subscribe(c, 0);
  auto by_seq = append(5);
  auto by_batch = append(5);
  caf::anon_send(ctx_->bus, published_atom::value, by_batch);
  caf::anon_send(ctx_->bus, published_atom::value, by_seq.back().seq);
  ASSERT_TRUE(c.wait_for(10));
  expect_gap_free(c.seqs, 1);
  auto more = append(2);
  caf::anon_send(ctx_->bus, published_atom::value, more.back().seq);
  ASSERT_TRUE(c.wait_for(12));
  expect_gap_free(c.seqs, 1);
}

TEST_F(event_bus_test, a_late_subscriber_replays_the_recent_window_then_follows_live) {
  for (int i = 0; i < 4; ++i) caf::anon_send(ctx_->bus, published_atom::value, append(100));
  collector first;
  auto sub1 = subscribe(first, 0);
  ASSERT_TRUE(first.wait_for(400));
  collector late;
  auto sub2 = subscribe(late, 250);
  ASSERT_TRUE(late.wait_for(150));
  caf::anon_send(ctx_->bus, published_atom::value, append(10));
  ASSERT_TRUE(late.wait_for(160));
  expect_gap_free(late.seqs, 251);
  EXPECT_EQ(late.seqs.size(), 160u);
}

}  // namespace
}  // namespace certfleet
