// The storage actor (actors/storage_actor.hpp): group commit on CAF's deterministic test
// coordinator, and, with real threads and a disk made slow by a failpoint, that a stalled fsync
// holds no scheduler thread.
#include "actors/storage_actor.hpp"

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/atoms.hpp"
#include "actors/events.hpp"
#include "actors/manager.hpp"
#include "common/failpoint.hpp"
#include "tests/support/temp_dir.hpp"

namespace certfleet {
namespace {

using namespace std::chrono_literals;

// Every actor function here takes an argument: CAF 0.17 dereferences a null argument tuple when it
// spawns one without, which UBSan reports (docs/platform.md).
caf::behavior quiet_bus(int) {
  return {[](published_atom, uint64_t) {}, [](published_atom, std::vector<event_record>&) {}};
}

/// CAF's test coordinator: messages run only when the test says so, on the test's thread.
caf::actor_system_config& deterministic(caf::actor_system_config& cfg) {
  cfg.set("scheduler.policy", caf::atom("testing"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  return cfg;
}

identity make_identity() {
  auto id = identity::generate({"certfleet-manager", "Acme Backup Ltd"}, std::chrono::hours{24},
                               "certfleet-manager");
  EXPECT_TRUE(id);
  return std::move(*id);
}

server_record record(int i) {
  server_record r;
  r.id = "s-0000000" + std::to_string(i);
  r.host = "127.0.0.1";
  r.port = static_cast<uint16_t>(10000 + i);
  r.state = server_state::trusted;
  return r;
}

/// Counts the batches that reached the store's fsynced write.
struct commit_counter {
  std::atomic<int> batches{0};
  commit_counter() {
    failpoint::arm("storage.before_group_commit", [this] { ++batches; });
  }
  ~commit_counter() { failpoint::disarm("storage.before_group_commit"); }
};

class storage_actor_test : public ::testing::Test {
 protected:
  test::temp_dir dir{"certfleet-storage-actor"};
  context_ptr ctx;

  void make_context() {
    auto key = master_key::create(dir / "master.key");
    ASSERT_TRUE(key);
    ctx = std::make_shared<daemon_context>(settings{}, std::move(*key), make_identity());
    auto store = state_store::open(dir / "db");
    ASSERT_TRUE(store) << describe(store.error());
    ctx->store = std::move(*store);
  }
};

TEST_F(storage_actor_test, durable_writes_waiting_together_share_one_fsync_and_keep_their_order) {
  make_context();
  commit_counter commits;
  caf::actor_system_config cfg;
  caf::actor_system sys{deterministic(cfg)};
  auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  ctx->bus = sys.spawn(quiet_bus, 0);
  auto storage = spawn_storage_actor(sys, ctx, false);
  std::vector<std::vector<event_record>> answers(3);
  std::vector<caf::actor> writers;
  for (int i = 0; i < 3; ++i)
    writers.push_back(sys.spawn(
        [&](caf::event_based_actor* self, int i) {
          auto r = record(i);
          self->request(storage, caf::infinite, persist_atom::value, r,
                        std::vector<event_record>{make_event(r, event_type::validated, {})}, true)
              .then([&, i](const std::vector<event_record>& stored) { answers[i] = stored; });
        },
        i));
  sched.run();
  EXPECT_EQ(commits.batches, 1) << "three trust decisions, one fsync";
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(answers[i].size(), 1u) << i;
    EXPECT_EQ(answers[i][0].server_id, record(i).id);
    EXPECT_EQ(answers[i][0].seq, static_cast<uint64_t>(i + 1)) << "in arrival order";
    auto stored = ctx->store->get_server(record(i).id);
    ASSERT_TRUE(stored && *stored);
  }
  EXPECT_GE(ctx->store->durable_event_seq(), 3u) << "answered only once durable";
  for (auto* a : {&storage, &ctx->bus}) caf::anon_send_exit(*a, caf::exit_reason::kill);
  sched.run();
  ctx->bus = nullptr;
}

TEST_F(storage_actor_test, reads_answer_as_messages_and_see_every_write_sent_before_them) {
  make_context();
  caf::actor_system_config cfg;
  caf::actor_system sys{deterministic(cfg)};
  auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  ctx->bus = sys.spawn(quiet_bus, 0);
  auto storage = spawn_storage_actor(sys, ctx, false);
  auto r = record(1);
  caf::anon_send(storage, persist_atom::value, r, std::vector<event_record>{});
  caf::anon_send(storage, persist_atom::value, record(2), std::vector<event_record>{});
  caf::anon_send(storage, inventory_atom::value, r.id, std::string{R"({"jobs":["nightly"]})"});
  std::vector<server_view> listed;
  server_view shown;
  auto reader = sys.spawn(
      [&](caf::event_based_actor* self, int) {
        self->request(storage, caf::infinite, list_atom::value)
            .then([&](std::vector<server_view>& views) { listed = std::move(views); });
        server_view live;
        live.record = r;
        live.connected = true;
        self->request(storage, caf::infinite, show_atom::value, live).then([&](server_view& v) {
          shown = std::move(v);
        });
      },
      0);
  sched.run();
  ASSERT_EQ(listed.size(), 2u) << "both writes queued before the list are in it";
  EXPECT_EQ(listed[0].record.id, r.id);
  EXPECT_FALSE(listed[0].credentials_retained);
  EXPECT_EQ(shown.record.id, r.id);
  EXPECT_TRUE(shown.connected) << "the live part of the view is kept";
  EXPECT_NE(shown.inventory_json.find("nightly"), std::string::npos);
  for (auto* a : {&storage, &ctx->bus}) caf::anon_send_exit(*a, caf::exit_reason::kill);
  caf::anon_send_exit(reader, caf::exit_reason::kill);
  sched.run();
  ctx->bus = nullptr;
}

TEST_F(storage_actor_test, status_counts_pinned_certificates_near_expiry_and_follows_writes) {
  make_context();
  constexpr int64_t now = 1'800'000'000'000;
  constexpr int64_t day = 24 * 3600 * 1000;
  ctx->now_ms = [] { return now; };
  caf::actor_system_config cfg;
  caf::actor_system sys{deterministic(cfg)};
  auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  ctx->bus = sys.spawn(quiet_bus, 0);
  auto storage = spawn_storage_actor(sys, ctx, false);
  // Pinned, expiring in 10 days (inside the default 30-day window); pinned, in 90 days; pinned,
  // expired yesterday; not pinned, with dates (awaiting validation): not counted.
  auto pinned = [&](int i, int64_t not_after, server_state state) {
    auto r = record(i);
    r.state = state;
    if (state != server_state::awaiting_validation) r.pinned = thumbprint::of_der({uint8_t(i)});
    r.certificate_not_after_ms = not_after;
    return r;
  };
  ASSERT_TRUE(ctx->store->put_server(pinned(1, now + 10 * day, server_state::trusted), {}, true));
  ASSERT_TRUE(ctx->store->put_server(pinned(2, now + 90 * day, server_state::trusted), {}, true));
  ASSERT_TRUE(
      ctx->store->put_server(pinned(3, now - day, server_state::certificate_changed), {}, true));
  ASSERT_TRUE(
      ctx->store->put_server(pinned(4, now + day, server_state::awaiting_validation), {}, true));
  storage_status status;
  auto ask = [&] {
    caf::scoped_actor self{sys, true};
    auto pending = self->request(storage, caf::infinite, status_atom::value);
    sched.run();
    pending.receive([&](storage_status& s) { status = s; }, [](caf::error&) {});
  };
  ask();
  EXPECT_EQ(status.certificates_expiring, 2u);
  EXPECT_EQ(status.earliest_certificate_not_after_ms, now - day);
  // A renewed certificate on server 1 and server 3 removed: nothing is due any more.
  caf::anon_send(storage, persist_atom::value, pinned(1, now + 400 * day, server_state::trusted),
                 std::vector<event_record>{});
  caf::anon_send(storage, remove_atom::value, record(3).id, std::vector<event_record>{});
  sched.run();
  ask();
  EXPECT_EQ(status.certificates_expiring, 0u);
  EXPECT_EQ(status.earliest_certificate_not_after_ms, now + 90 * day);
  for (auto* a : {&storage, &ctx->bus}) caf::anon_send_exit(*a, caf::exit_reason::kill);
  sched.run();
  ctx->bus = nullptr;
}

TEST_F(storage_actor_test, writes_without_a_request_are_stored_in_order_without_an_fsync) {
  make_context();
  commit_counter commits;
  caf::actor_system_config cfg;
  caf::actor_system sys{deterministic(cfg)};
  auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  ctx->bus = sys.spawn(quiet_bus, 0);
  auto storage = spawn_storage_actor(sys, ctx, false);
  auto r = record(1);
  r.state = server_state::pending_registration;
  caf::anon_send(storage, persist_atom::value, r, std::vector<event_record>{});
  r.state = server_state::trusted;
  caf::anon_send(storage, persist_atom::value, r,
                 std::vector<event_record>{make_event(r, event_type::connection_up, {})});
  caf::anon_send(storage, inventory_atom::value, r.id, std::string{R"({"jobs":[]})"});
  sched.run();
  EXPECT_EQ(commits.batches, 0);
  auto stored = ctx->store->get_server(r.id);
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ((*stored)->state, server_state::trusted) << "the later write wins";
  auto inv = ctx->store->get_inventory(r.id);
  ASSERT_TRUE(inv && *inv);
  EXPECT_EQ(ctx->store->last_event_seq(), 1u);
  for (auto* a : {&storage, &ctx->bus}) caf::anon_send_exit(*a, caf::exit_reason::kill);
  sched.run();
  ctx->bus = nullptr;
}

TEST_F(storage_actor_test, a_durable_write_without_events_tells_the_bus_what_it_made_durable) {
  make_context();
  caf::actor_system_config cfg;
  caf::actor_system sys{deterministic(cfg)};
  auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  // The bus publishes an event once the store says it is durable, and looks again at each
  // announcement; what matters is that one comes after the fsync.
  std::vector<uint64_t> durable_at_announcement;
  ctx->bus = sys.spawn(
      [&](caf::event_based_actor*, int) -> caf::behavior {
        return {[&](published_atom, uint64_t) {
                  durable_at_announcement.push_back(ctx->store->durable_event_seq());
                },
                [](published_atom, std::vector<event_record>&) {}};
      },
      0);
  auto storage = spawn_storage_actor(sys, ctx, false);
  auto r = record(1);
  // A connectivity event, stored without an fsync: not durable yet.
  caf::anon_send(storage, persist_atom::value, r,
                 std::vector<event_record>{make_event(r, event_type::connection_up, {})});
  sched.run();
  EXPECT_EQ(ctx->store->durable_event_seq(), 0u);
  // A state change that must be durable but carries no event (as `server credentials` stores).
  bool answered = false;
  sys.spawn(
      [&](caf::event_based_actor* self, int) {
        self->request(storage, caf::infinite, persist_atom::value, r, std::vector<event_record>{},
                      true)
            .then([&](const std::vector<event_record>&) { answered = true; });
      },
      0);
  sched.run();
  EXPECT_TRUE(answered);
  ASSERT_FALSE(durable_at_announcement.empty());
  EXPECT_EQ(durable_at_announcement.back(), 1u)
      << "the fsync made the earlier event durable, and the bus is told so";
  for (auto* a : {&storage, &ctx->bus}) caf::anon_send_exit(*a, caf::exit_reason::kill);
  sched.run();
  ctx->bus = nullptr;
}

// With one scheduler thread, an fsync taken on it would stop every other actor; the storage
// actor's own thread takes it instead.
TEST_F(storage_actor_test, a_slow_fsync_holds_no_scheduler_thread_while_other_actors_keep_working) {
  make_context();
  constexpr auto stall = 1500ms;
  failpoint::arm("storage.before_group_commit", [stall] { std::this_thread::sleep_for(stall); });
  {
    caf::actor_system_config cfg;
    cfg.set("scheduler.policy", caf::atom("sharing"));
    cfg.set("scheduler.max-threads", size_t{1});
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    caf::actor_system sys{cfg};
    ctx->bus = sys.spawn(quiet_bus, 0);
    auto storage = spawn_storage_actor(sys, ctx);
    // Stands for a server actor collecting: answers at once, on the scheduler thread.
    auto collector =
        sys.spawn([](int) -> caf::behavior { return {[](collect_atom, int i) { return i; }}; }, 0);
    caf::scoped_actor self{sys};
    auto started = std::chrono::steady_clock::now();
    auto r = record(1);
    std::atomic<bool> trusted{false};
    auto trust = sys.spawn(
        [&](caf::event_based_actor* s, int) {
          s->request(storage, caf::infinite, persist_atom::value, r,
                     std::vector<event_record>{make_event(r, event_type::validated, {})}, true)
              .then([&](const std::vector<event_record>&) { trusted = true; });
        },
        0);
    std::this_thread::sleep_for(100ms);  // the batch is now stalled in its fsync
    int collected = 0;
    auto worst = std::chrono::steady_clock::duration::zero();
    for (int i = 0; i < 50; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      self->request(collector, 1s, collect_atom::value, i)
          .receive([&](int) { ++collected; }, [&](caf::error&) {});
      worst = std::max(worst, std::chrono::steady_clock::now() - t0);
    }
    EXPECT_EQ(collected, 50);
    EXPECT_FALSE(trusted) << "the trust decision waits for its fsync";
    EXPECT_LT(worst, 200ms) << "no collection waited for the disk";
    while (!trusted && std::chrono::steady_clock::now() - started < 10s)
      std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(trusted);
    EXPECT_GE(std::chrono::steady_clock::now() - started, stall);
    for (auto* a : {&storage, &ctx->bus, &collector, &trust})
      caf::anon_send_exit(*a, caf::exit_reason::kill);
    ctx->bus = nullptr;
  }
  failpoint::disarm("storage.before_group_commit");
}

}  // namespace
}  // namespace certfleet
