// The manager certificate rotation on the server actor's side and the rotation actor's
// bookkeeping (actors/rotation_actor.hpp), run on CAF's deterministic test coordinator with the
// same stand-ins as tests/actors/server_actor_test.cpp: real TLS on both ends in memory, a real
// RocksDB store and certificate store in a temp directory, injected time. The scripted backup
// server stores and retires manager certificates as the agent does.
#include "actors/server_actor.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <caf/all.hpp>
#include <caf/io/connection_handle.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/atoms.hpp"
#include "actors/rotation_actor.hpp"
#include "actors/rotation_record.hpp"
#include "actors/storage_actor.hpp"
#include "crypto/certificate_store.hpp"
#include "tests/support/temp_dir.hpp"

namespace certfleet {
namespace {

using namespace std::chrono_literals;
using caf::io::connection_handle;

identity make_identity(const std::string& cn) {
  auto id = identity::generate({cn, "Acme Backup Ltd"}, std::chrono::hours{24 * 90}, cn);
  EXPECT_TRUE(id) << describe(id.error());
  return std::move(*id);
}

/// The backup server at the other end: a real TLS server session with scripted answers.
struct backup_server {
  identity id = make_identity("backup-1.example");
  std::shared_ptr<tls_session_cache> cache = std::make_shared<tls_session_cache>(16);
  // Script.
  bool answer_handshake = true;  // false: swallow every byte (a stalled endpoint)
  std::optional<wire::denied> deny;
  std::optional<thumbprint> claimed_thumbprint;  // what `registered` says, when not the real one
  std::optional<wire::hello> hello_answer;       // replaces the default hello
  bool refuse_rotation = false;                  // answer rotate_manager_certificate with a refusal
  // The agent's manager certificates: what it accepts, and what each connection presented.
  std::set<std::string> managers;
  std::vector<std::string> presented;
  // What it saw.
  std::vector<wire::message> received;
  int connections = 0;

  std::unique_ptr<tls_server_session> tls;
  std::vector<uint8_t> out;
  std::vector<wire::message> inbox;

  void accept() {
    ++connections;
    out.clear();
    inbox.clear();
    tls_outputs o;
    o.ciphertext = [this](const uint8_t* d, size_t n) { out.insert(out.end(), d, d + n); };
    o.message = [this](wire::message&& m) { inbox.push_back(std::move(m)); };
    tls = std::make_unique<tls_server_session>(
        id, [](const thumbprint&) { return caf::error{}; }, cache, std::move(o));
  }

  /// Feeds the manager's bytes and answers; returns the bytes for the manager.
  std::vector<char> feed(const std::vector<char>& bytes) {
    if (tls && answer_handshake) {
      bool was_active = tls->is_active();
      static_cast<void>(
          tls->received(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
      if (!was_active && tls->is_active() && tls->peer_thumbprint())
        presented.push_back(tls->peer_thumbprint()->to_string());
      auto msgs = std::move(inbox);
      inbox.clear();
      for (auto& m : msgs) answer(m);
    }
    std::vector<char> reply(out.begin(), out.end());
    out.clear();
    return reply;
  }

  void answer(const wire::message& m) {
    received.push_back(m);
    if (std::holds_alternative<wire::hello>(m)) {
      static_cast<void>(tls->send(hello_answer ? *hello_answer : wire::hello{2, 2, "backup-1"}));
    } else if (std::holds_alternative<wire::register_request>(m)) {
      if (deny)
        static_cast<void>(tls->send(*deny));
      else
        static_cast<void>(
            tls->send(wire::registered{claimed_thumbprint.value_or(id.sha256()), "vbr-1"}));
    } else if (auto* r = std::get_if<wire::rotate_manager_certificate>(&m)) {
      if (refuse_rotation) {
        static_cast<void>(tls->send(wire::rotation_refused{wire::type_of(m), "not today"}));
      } else {
        auto t = thumbprint::of_der(r->certificate_der);
        managers.insert(t.to_string());
        static_cast<void>(tls->send(wire::manager_certificate_stored{t}));
      }
    } else if (auto* d = std::get_if<wire::retire_manager_certificate>(&m)) {
      managers.erase(d->retired.to_string());
      static_cast<void>(tls->send(wire::manager_certificate_retired{d->retired}));
    } else if (std::holds_alternative<wire::collect>(m)) {
      wire::inventory inv;
      inv.jobs.push_back({"nightly", "full", "success", 1700000000000, 42});
      static_cast<void>(tls->send(inv));
    }
  }

  size_t count(wire::message_type t) const {
    return static_cast<size_t>(std::count_if(received.begin(), received.end(),
                                             [t](const auto& m) { return wire::type_of(m) == t; }));
  }
};

/// What the stand-ins for the supervisor, the broker and the connector do and saw.
struct world {
  backup_server server;
  // supervisor
  bool grant_slots = true;
  int slot_requests = 0;
  int releases = 0;
  bool credentials_gone = false;
  std::vector<std::string> credential_erasures;  // reasons
  std::optional<server_presence> presence;
  // connector
  bool refuse_connects = false;
  int connects = 0;
  // broker
  bool adopt = true;
  int64_t next_handle = 0;
  std::optional<connection_handle> open;
  int closes = 0;
  caf::actor owner;
  // registry forwarding (rotation nudges)
  caf::actor server_actor;
  // injected time and randomness
  // The real time: the renewed certificate is generated at `now_ms` and checked by TLS against the
  // system clock.
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  uint64_t (*random)(uint64_t max) = [](uint64_t max) { return max; };
};

using world_ptr = std::shared_ptr<world>;

caf::behavior fake_supervisor(caf::event_based_actor* self, world_ptr w) {
  return {
      [=](slot_atom) {
        ++w->slot_requests;
        if (w->grant_slots)
          self->send(caf::actor_cast<caf::actor>(self->current_sender()), slot_atom::value);
      },
      [=](release_atom) { ++w->releases; },
      [=](state_atom, const server_presence& p) { w->presence = p; },
      [=](credentials_atom, const std::string&) -> caf::result<std::string, secret_bytes> {
        if (w->credentials_gone) return make_error(ec::not_found, "no retained credentials");
        return caf::result<std::string, secret_bytes>(std::string{"backup-admin"},
                                                      to_secret("fleet-secret"));
      },
      [=](credentials_atom, remove_atom, const std::string&, const std::string& why) {
        w->credential_erasures.push_back(why);
      },
      [=](forward_atom, const std::vector<std::string>&, const caf::message& msg) {
        if (w->server_actor) self->send(w->server_actor, msg);
      },
  };
}

caf::behavior fake_broker(caf::event_based_actor* self, world_ptr w) {
  return {
      [=](adopt_atom, int fd, const caf::actor& owner) {
        ::close(fd);
        if (!w->adopt) return;
        auto hdl = connection_handle::from_int(++w->next_handle);
        w->open = hdl;
        w->owner = owner;
        w->server.accept();
        self->send(owner, adopted_atom::value, hdl);
      },
      [=](write_atom, connection_handle hdl, const std::vector<char>& bytes) {
        if (!w->open || *w->open != hdl) return;
        auto reply = w->server.feed(bytes);
        if (!reply.empty()) self->send(w->owner, bytes_atom::value, hdl, std::move(reply));
      },
      [=](close_atom, connection_handle hdl) {
        ++w->closes;
        if (w->open && *w->open == hdl) w->open.reset();
      },
  };
}

// Takes the world only because CAF 0.17 dereferences a null argument tuple when it spawns a
// function without arguments, which UBSan reports (docs/platform.md).
caf::behavior quiet_bus(world_ptr) {
  return {[](published_atom, uint64_t) {}, [](published_atom, std::vector<event_record>&) {}};
}

class server_rotation_test : public ::testing::Test {
 protected:
  test::temp_dir dir{"certfleet-server-actor"};
  world_ptr w = std::make_shared<world>();
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  context_ptr ctx;
  caf::actor supervisor;
  caf::actor server;
  server_record rec;
  std::string old_manager;

  void SetUp() override {
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    settings s;
    s.daemon.connect_timeout_ms = 1000;
    s.daemon.handshake_timeout_ms = 2000;
    s.daemon.backoff_initial_ms = 100;
    s.daemon.backoff_max_ms = 500;
    s.daemon.collect_interval_s = 10;
    s.state_dir = dir.path();
    auto key = master_key::create(dir / "master.key");
    ASSERT_TRUE(key) << describe(key.error());
    ctx = std::make_shared<daemon_context>(s, std::move(*key), make_identity("certfleet-manager"));
    auto store = state_store::open(dir / "db");
    ASSERT_TRUE(store) << describe(store.error());
    ctx->store = std::move(*store);
    ctx->sessions = std::make_shared<tls_session_cache>(16);
    auto wp = w;
    ctx->now_ms = [wp] { return wp->now_ms; };
    ctx->random = [wp](uint64_t max) { return wp->random(max); };
    ctx->connect_to = [wp](const std::string&, uint16_t, std::chrono::milliseconds,
                           connector::done_fn done) {
      ++wp->connects;
      if (wp->refuse_connects)
        done(-1, make_error(ec::io_error, "connection refused"));
      else
        done(::open("/dev/null", O_RDONLY | O_CLOEXEC), {});
    };
    ctx->broker = sys->spawn(fake_broker, w);
    ctx->bus = sys->spawn(quiet_bus, w);
    ctx->storage = spawn_storage_actor(*sys, ctx, false);
    auto certs = certificate_store::open(dir / "certs", true);
    ASSERT_TRUE(certs) << describe(certs.error());
    ASSERT_FALSE(certs->install(ctx->manager_identity));
    old_manager = ctx->manager_identity.sha256().to_string();
    supervisor = sys->spawn(fake_supervisor, w);
    ctx->rotation = spawn_rotation_actor(*sys, ctx, false);
    caf::anon_send(ctx->rotation, registry_atom::value, supervisor);
    rec.id = "s-00000001";
    rec.name = "backup-1";
    rec.host = "127.0.0.1";
    rec.port = 10001;
    rec.account = "backup-admin";
    rec.state = server_state::pending_registration;
  }

  void TearDown() override {
    for (auto* a : {&server, &supervisor, &ctx->broker, &ctx->bus, &ctx->storage, &ctx->rotation})
      if (*a) caf::anon_send_exit(*a, caf::exit_reason::kill);
    w->owner = nullptr;
    w->server_actor = nullptr;
    sched->run();
    server = supervisor = ctx->broker = ctx->bus = ctx->storage = ctx->rotation = nullptr;
  }

  /// Persists `rec` and spawns its actor, then lets everything run.
  void start() {
    ASSERT_TRUE(ctx->store->put_server(rec, {}, true));
    server = spawn_server_actor(*sys, ctx, server_peers{supervisor, supervisor, supervisor}, rec);
    w->server_actor = server;
    sched->run();
  }

  /// Lets `d` pass on the coordinator's clock, then runs what became due.
  void advance(std::chrono::milliseconds d) {
    sched->advance_time(d);
    sched->run();
  }

  template <class T, class... Ts>
  caf::expected<T> ask(Ts... xs) {
    caf::scoped_actor self{*sys, true};
    auto pending = self->request(server, caf::infinite, xs...);
    sched->run();
    caf::expected<T> result = make_error(ec::timeout, "no answer");
    pending.receive([&](T& v) { result = std::move(v); }, [&](caf::error& e) { result = e; });
    return result;
  }

  server_record stored() {
    auto r = ctx->store->get_server(rec.id);
    EXPECT_TRUE(r && *r);
    return r && *r ? **r : server_record{};
  }

  server_state state() { return stored().state; }

  std::vector<std::string> events() {
    std::vector<std::string> types;
    auto evs = ctx->store->read_events(0, 1000);
    EXPECT_TRUE(evs);
    if (evs)
      for (auto& e : *evs)
        if (e.server_id == rec.id) types.push_back(e.type);
    return types;
  }

  bool has_event(const std::string& type) {
    auto t = events();
    return std::find(t.begin(), t.end(), type) != t.end();
  }

  /// Brings a fresh server to awaiting_validation (no expected thumbprint, manual policy).
  void register_unvalidated() {
    start();
    ASSERT_EQ(state(), server_state::awaiting_validation);
  }

  /// Brings a fresh server to trusted, online and collected once.
  void register_trusted() {
    rec.expected = w->server.id.sha256();
    start();
    ASSERT_EQ(state(), server_state::trusted);
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
