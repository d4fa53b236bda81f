// The manager certificate rotation on the server actor's side and the rotation actor's
// bookkeeping (actors/rotation_actor.hpp), on the stage of tests/actors/server_world.hpp (real TLS
// on both ends in memory, a real RocksDB store and, here, a certificate store in a temp directory,
// injected time). The scripted backup server stores and retires manager certificates as the agent
// does.
#include "actors/rotation_actor.hpp"
#include "actors/rotation_record.hpp"
#include "crypto/certificate_store.hpp"
#include "tests/actors/server_world.hpp"

namespace certfleet {
namespace {

using namespace certfleet::test;

class server_rotation_test : public server_actor_fixture {
 protected:
  std::string old_manager;

  void spawn_more() override {
    auto certs = certificate_store::open(dir / "certs", true);
    ASSERT_TRUE(certs) << describe(certs.error());
    ASSERT_FALSE(certs->install(ctx->manager_identity));
    old_manager = ctx->manager_identity.sha256().to_string();
    ctx->rotation = spawn_rotation_actor(*sys, ctx, false);
    caf::anon_send(ctx->rotation, registry_atom::value, supervisor);
  }

  template <class T, class... Ts>
  caf::expected<T> ask_rotation(Ts... xs) {
    caf::scoped_actor self{*sys, true};
    auto pending = self->request(ctx->rotation, caf::infinite, xs...);
    sched->run();
    caf::expected<T> result = make_error(ec::timeout, "no answer");
    pending.receive([&](T& v) { result = std::move(v); }, [&](caf::error& e) { result = e; });
    sched->run();
    return result;
  }

  rotation_view renew() {
    auto v = ask_rotation<rotation_view>(renew_atom::value, std::string{"next"});
    EXPECT_TRUE(v) << describe(v.error());
    return v ? *v : rotation_view{};
  }

  rotation_view status() {
    auto v = ask_rotation<rotation_view>(rotation_atom::value, status_atom::value);
    EXPECT_TRUE(v);
    return v ? *v : rotation_view{};
  }

  std::string new_manager() { return ctx->identities->current().sha256().to_string(); }

  bool old_key_on_disk() {
    for (const auto& e : std::filesystem::directory_iterator(dir / "certs"))
      if (e.path().extension() == ".key") {
        auto id = certificate_store::open(dir / "certs", false)->load_previous();
        if (id && *id && (*id)->sha256().to_string() == old_manager) return true;
      }
    return false;
  }

  size_t global_events(const std::string& type) {
    auto evs = ctx->store->read_events(0, 1000);
    return static_cast<size_t>(
        std::count_if(evs->begin(), evs->end(), [&](const auto& e) { return e.type == type; }));
  }

  /// Drops the connection as a network failure would and lets the actor reconnect.
  void reconnect() {
    auto hdl = *w->open;
    w->open.reset();
    caf::anon_send(server, disconnected_atom::value, hdl);
    sched->run();
    advance(500ms);
  }
};

TEST_F(server_rotation_test, a_connected_server_moves_at_once_and_the_old_key_is_retired) {
  register_trusted();
  EXPECT_EQ(w->server.presented.back(), old_manager);
  auto v = renew();
  EXPECT_EQ(v.servers, 1u);
  // Offered, acknowledged, recorded, then (everyone moved) the old key destroyed and the agent
  // told to drop the old certificate.
  EXPECT_EQ(w->server.count(wire::message_type::rotate_manager_certificate), 1u);
  EXPECT_EQ(w->server.count(wire::message_type::retire_manager_certificate), 1u);
  EXPECT_EQ(w->server.managers, std::set<std::string>{new_manager()});
  EXPECT_TRUE(has_event("server_rotated"));
  EXPECT_EQ(global_events("rotation_started"), 1u);
  EXPECT_EQ(global_events("rotation_completed"), 1u);
  auto s = status();
  EXPECT_EQ(s.phase, "completed");
  EXPECT_EQ(s.moved, 1u);
  EXPECT_EQ(s.drops_owed, 0u);
  EXPECT_FALSE(old_key_on_disk());
  EXPECT_FALSE(ctx->identities->previous());
  // The next connection presents the new certificate, and collection goes on.
  auto collections = w->server.count(wire::message_type::collect);
  reconnect();
  EXPECT_EQ(w->server.presented.back(), new_manager());
  EXPECT_GT(w->server.count(wire::message_type::collect), collections);
  EXPECT_EQ(state(), server_state::trusted);
}

TEST_F(server_rotation_test, an_offline_server_gets_the_new_certificate_when_it_reconnects) {
  register_trusted();
  w->refuse_connects = true;
  reconnect();
  renew();
  EXPECT_EQ(status().moved, 0u);
  ASSERT_EQ(status().pending.size(), 1u);
  EXPECT_EQ(status().pending[0].id, rec.id);
  EXPECT_TRUE(old_key_on_disk());
  auto sessions = w->server.presented.size();
  w->refuse_connects = false;
  advance(1000ms);
  // It reconnected with the OLD certificate (it had not acknowledged the new one), moved, and
  // the rotation completed; the next session, with the new certificate, retired the old one.
  ASSERT_GE(w->server.presented.size(), sessions + 2);
  EXPECT_EQ(w->server.presented[sessions], old_manager);
  EXPECT_EQ(w->server.presented.back(), new_manager());
  EXPECT_EQ(status().phase, "completed");
  EXPECT_EQ(status().drops_owed, 0u);
  EXPECT_EQ(w->server.managers, std::set<std::string>{new_manager()});
  EXPECT_FALSE(old_key_on_disk());
}

TEST_F(server_rotation_test, a_refusing_agent_keeps_getting_the_old_certificate) {
  register_trusted();
  w->server.refuse_rotation = true;
  renew();
  auto s = status();
  EXPECT_EQ(s.phase, "rolling_out");
  ASSERT_EQ(s.pending.size(), 1u);
  EXPECT_EQ(s.pending[0].last_error, "not today");
  reconnect();
  EXPECT_EQ(w->server.presented.back(), old_manager) << "never a certificate it has not stored";
  EXPECT_TRUE(old_key_on_disk());
  w->server.refuse_rotation = false;
  reconnect();
  EXPECT_EQ(status().phase, "completed");
  reconnect();
  EXPECT_EQ(w->server.presented.back(), new_manager());
}

TEST_F(server_rotation_test,
       expiry_of_the_old_certificate_sends_an_unmoved_server_to_reregistration) {
  register_trusted();
  w->refuse_connects = true;
  reconnect();
  renew();
  auto old_not_after = std::chrono::duration_cast<std::chrono::milliseconds>(
                           ctx->identities->previous()->not_after().time_since_epoch())
                           .count();
  w->now_ms = old_not_after + 1000;
  caf::anon_send(ctx->rotation, tick_atom::value);
  sched->run();
  EXPECT_EQ(state(), server_state::reregistration_required);
  EXPECT_TRUE(has_event("reregistration_required"));
  auto s = status();
  EXPECT_EQ(s.phase, "completed");
  EXPECT_EQ(s.missed, std::vector<std::string>{rec.id});
  EXPECT_FALSE(old_key_on_disk());
  // Not contacted any more...
  auto connects = w->connects;
  advance(5000ms);
  EXPECT_EQ(w->connects, connects);
  // ...until new credentials register it again with the new certificate; its pin still holds.
  w->refuse_connects = false;
  auto v = ask<server_view>(credentials_atom::value, std::string{"backup-admin"});
  ASSERT_TRUE(v) << describe(v.error());
  sched->run();
  EXPECT_EQ(state(), server_state::trusted);
  EXPECT_EQ(w->server.presented.back(), new_manager());
}

TEST_F(server_rotation_test, a_second_renewal_is_refused_while_one_rolls_out) {
  register_trusted();
  w->refuse_connects = true;
  reconnect();
  renew();
  auto again = ask_rotation<rotation_view>(renew_atom::value, std::string{});
  ASSERT_FALSE(again);
  EXPECT_EQ(code_of(again.error()), ec::invalid_state);
  EXPECT_NE(describe(again.error()).find("cert status"), std::string::npos);
}

TEST_F(server_rotation_test, a_restarted_daemon_resumes_the_rotation_from_its_record) {
  register_trusted();
  w->refuse_connects = true;
  reconnect();
  renew();
  auto current = ctx->identities->current();
  // A new start: identities rebuilt from the certificate store and the record, a new rotation
  // actor and a new server actor.
  caf::anon_send_exit(ctx->rotation, caf::exit_reason::kill);
  caf::anon_send_exit(server, caf::exit_reason::kill);
  sched->run();
  auto certs = certificate_store::open(dir / "certs", false);
  ASSERT_TRUE(certs);
  auto book = open_manager_identities(*certs, *ctx->store, current);
  ASSERT_TRUE(book) << describe(book.error());
  ctx->identities = *book;
  ASSERT_TRUE(ctx->identities->previous());
  EXPECT_EQ(ctx->identities->for_server(rec.id).sha256().to_string(), old_manager);
  ctx->rotation = spawn_rotation_actor(*sys, ctx, false);
  caf::anon_send(ctx->rotation, registry_atom::value, supervisor);
  w->refuse_connects = false;
  rec = stored();
  server = spawn_server_actor(*sys, ctx, server_peers{supervisor, supervisor, supervisor}, rec);
  w->server_actor = server;
  sched->run();
  advance(500ms);
  EXPECT_EQ(status().phase, "completed");
  EXPECT_EQ(w->server.managers, std::set<std::string>{current.sha256().to_string()});
}

// -- the record's bookkeeping ---------------------------------------------------------------------

TEST(rotation_record, round_trips_and_counts_moved_and_pending_servers) {
  rotation_record r;
  r.old_thumbprint = "AA";
  r.new_thumbprint = "BB";
  r.old_not_after_s = 2000;
  r.started_ms = 5;
  r.servers = {{"s-1", 0}, {"s-2", 0}, {"s-3", 0}};
  EXPECT_TRUE(r.mark_moved("s-2", 100));
  EXPECT_FALSE(r.mark_moved("s-2", 200)) << "idempotent";
  EXPECT_FALSE(r.mark_moved("s-9", 200)) << "not part of the rotation";
  EXPECT_EQ(r.moved_count(), 1u);
  EXPECT_EQ(r.pending(), (std::vector<std::string>{"s-1", "s-3"}));
  EXPECT_FALSE(r.ready_to_retire(1'000'000));
  EXPECT_TRUE(r.ready_to_retire(2'001'000)) << "the old certificate expired";
  EXPECT_TRUE(r.forget("s-1"));
  EXPECT_TRUE(r.mark_moved("s-3", 300));
  EXPECT_TRUE(r.ready_to_retire(0)) << "everyone left moved";
  r.drop_owed = {"s-2"};
  r.missed = {"s-7"};
  auto back = decode_rotation_record(encode_rotation_record(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->servers, r.servers);
  EXPECT_EQ(back->drop_owed, r.drop_owed);
  EXPECT_EQ(back->missed, r.missed);
  EXPECT_EQ(back->old_not_after_s, 2000);
}

TEST(rotation_record, an_unknown_version_or_phase_is_refused) {
  auto text = encode_rotation_record(rotation_record{});
  auto bad_version = text;
  bad_version.replace(bad_version.find("\"version\":1"), 11, "\"version\":7");
  EXPECT_EQ(code_of(decode_rotation_record(bad_version).error()), ec::corrupt_data);
  auto bad_phase = text;
  bad_phase.replace(bad_phase.find("rolling_out"), 11, "sideways");
  EXPECT_EQ(code_of(decode_rotation_record(bad_phase).error()), ec::corrupt_data);
  EXPECT_EQ(code_of(decode_rotation_record("{").error()), ec::corrupt_data);
}

}  // namespace
}  // namespace certfleet
