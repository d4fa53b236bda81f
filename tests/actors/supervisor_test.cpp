// The registry (actors/supervisor.hpp) restarting a server actor that stopped: the record comes
// from the storage actor, as stored, and a server removed meanwhile is forgotten. On the stage of
// the server actor tests (server_world.hpp), with the real registry and real server actors; the
// stand-in supervisor grants the handshake slots.
#include "actors/supervisor.hpp"

#include "tests/actors/server_world.hpp"

namespace certfleet {
namespace {

using namespace certfleet::test;

// Credentials are never needed here (every connect is refused): the custody stand-in only hears
// who the registry is.
caf::behavior quiet_custody(world_ptr) {
  return {[](registry_atom, const caf::actor&) {}};
}

class registry_test : public server_actor_fixture {
 protected:
  caf::actor registry;
  caf::actor custody;

  void TearDown() override {
    if (registry) caf::anon_send(registry, stop_atom::value);  // stops its server actors too
    sched->run();
    if (custody) caf::anon_send_exit(custody, caf::exit_reason::kill);
    sched->run();
    registry = custody = nullptr;
    server_actor_fixture::TearDown();
  }

  /// Stores `rec` and spawns the registry, which loads it and spawns its actor.
  void start_registry() {
    ASSERT_TRUE(ctx->store->put_server(rec, {}, true));
    custody = sys->spawn(quiet_custody, w);
    registry = spawn_supervisor(*sys, ctx, fleet_services{supervisor, custody});
    sched->run();
  }

  /// Stops the server's actor as a crash would (an exit it cannot refuse), and lets every actor
  /// but the storage actor run first: the restart must not depend on the storage actor having
  /// handled its mailbox by then.
  void crash_server_actor() {
    caf::anon_send(registry, forward_atom::value, std::vector<std::string>{rec.id},
                   caf::make_message(caf::exit_msg{caf::actor_addr{}, caf::exit_reason::kill}));
    auto* storage =
        dynamic_cast<caf::resumable*>(caf::actor_cast<caf::abstract_actor*>(ctx->storage));
    sched->run_jobs_filtered([&](caf::resumable* job) { return job != storage; });
    sched->run();
  }

  caf::expected<server_view> show() {
    caf::scoped_actor self{*sys, true};
    auto pending = self->request(registry, caf::infinite, show_atom::value, rec.id);
    sched->run();
    caf::expected<server_view> result = make_error(ec::timeout, "no answer");
    pending.receive([&](server_view& v) { result = std::move(v); },
                    [&](caf::error& e) { result = e; });
    return result;
  }
};

TEST_F(registry_test, a_server_actor_that_stops_is_restarted_from_its_record_as_last_written) {
  w->refuse_connects = true;
  start_registry();
  ASSERT_EQ(w->connects, 1);
  // A write still queued at the storage actor when the actor stops is what the new actor runs
  // from, not what the registry loaded at start.
  auto changed = rec;
  changed.state = server_state::awaiting_validation;
  changed.presented = w->server.id.sha256();
  caf::anon_send(ctx->storage, persist_atom::value, changed, std::vector<event_record>{});
  crash_server_actor();
  auto v = show();
  ASSERT_TRUE(v) << describe(v.error());
  EXPECT_EQ(v->record.state, server_state::awaiting_validation);
  ASSERT_TRUE(v->record.presented);
  EXPECT_EQ(*v->record.presented, w->server.id.sha256());
  EXPECT_EQ(w->connects, 1) << "awaiting validation: not contacted";
}

TEST_F(registry_test, a_restarted_server_actor_makes_its_first_attempt_again) {
  w->refuse_connects = true;
  start_registry();
  ASSERT_EQ(w->connects, 1);
  crash_server_actor();
  EXPECT_EQ(w->connects, 2);
  auto v = show();
  ASSERT_TRUE(v) << describe(v.error());
  EXPECT_EQ(v->record.state, server_state::pending_registration);
}

TEST_F(registry_test, a_server_removed_while_its_actor_stopped_is_forgotten) {
  w->refuse_connects = true;
  start_registry();
  ASSERT_TRUE(ctx->store->remove_server(rec.id, {}));
  crash_server_actor();
  auto v = show();
  ASSERT_FALSE(v);
  EXPECT_EQ(code_of(v.error()), ec::not_found);
  EXPECT_EQ(w->connects, 1) << "no actor for it";
}

}  // namespace
}  // namespace certfleet
