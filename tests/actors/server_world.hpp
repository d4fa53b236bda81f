// The stage on which the server actor tests run (tests/actors/server_actor_test.cpp and
// server_rotation_test.cpp): CAF's deterministic test coordinator (one thread, messages delivered
// by `sched.run()`, timers fired by advancing the coordinator's clock), time (`now_ms`) and
// randomness (backoff and collection jitter) injected through the daemon context.
//
// The real parts: the server actor, its TLS client session, the backup server's TLS server session
// (protocol/), and a RocksDB store in a temp directory. Stand-ins: the supervisor (grants slots,
// hands out credentials, forwards registry messages), the broker (moves bytes between the two TLS
// sessions in memory instead of a socket), the connector (hands over a file descriptor, or
// refuses) and the renewal actor (records what it is asked to watch). The scripted backup server
// registers, collects, speaks the legacy protocol on request, and stores and retires manager
// certificates as the agent does.
#pragma once

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
#include "actors/server_actor.hpp"
#include "actors/server_certificate.hpp"
#include "actors/storage_actor.hpp"
#include "tests/support/temp_dir.hpp"

namespace certfleet::test {

using namespace std::chrono_literals;
using caf::io::connection_handle;

inline identity make_identity(const std::string& cn) {
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
  bool answer_messages = true;   // false: completes TLS but answers nothing (a crashing service)
  std::optional<wire::denied> deny;
  std::optional<wire::denied> deny_collect;  // answers `collect` with this (then the agent closes)
  std::optional<thumbprint> claimed_thumbprint;  // what `registered` says, when not the real one
  std::string claimed_id = "vbr-1";              // the server id `registered` reports
  std::string job_name = "nightly";              // the job the inventory lists
  std::optional<wire::hello> hello_answer;       // replaces the default hello
  bool legacy = false;           // speaks only protocol version 1 (legacy_login on every session)
  bool refuse_rotation = false;  // answer rotate_manager_certificate with a refusal
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
    tls_options opts;
    if (legacy) opts.min_version = opts.max_version = wire::legacy_protocol_version;
    tls = std::make_unique<tls_server_session>(
        id, [](const thumbprint&) { return caf::error{}; }, cache, std::move(o), opts);
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
      for (auto& m : msgs)
        if (answer_messages) answer(m);
    }
    std::vector<char> reply(out.begin(), out.end());
    out.clear();
    return reply;
  }

  void answer(const wire::message& m) {
    received.push_back(m);
    if (legacy) {
      answer_legacy(m);
      return;
    }
    if (auto* h = std::get_if<wire::hello>(&m); h != nullptr && h->max_version < 2) {
      static_cast<void>(tls->send(wire::hello{2, 2, "backup-1"}));
      static_cast<void>(tls->send(wire::denied{wire::denial_reason::unsupported_version, "2"}));
    } else if (std::holds_alternative<wire::hello>(m)) {
      static_cast<void>(tls->send(hello_answer ? *hello_answer : wire::hello{2, 2, "backup-1"}));
    } else if (std::holds_alternative<wire::register_request>(m)) {
      if (deny)
        static_cast<void>(tls->send(*deny));
      else
        static_cast<void>(
            tls->send(wire::registered{claimed_thumbprint.value_or(id.sha256()), claimed_id}));
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
    } else if (std::holds_alternative<wire::collect>(m) && deny_collect) {
      static_cast<void>(tls->send(*deny_collect));
      tls->close();
    } else if (std::holds_alternative<wire::collect>(m)) {
      wire::inventory inv;
      inv.jobs.push_back({job_name, "full", "success", 1700000000000, 42});
      static_cast<void>(tls->send(inv));
    } else if (auto* p = std::get_if<wire::ping>(&m)) {
      static_cast<void>(tls->send(wire::pong{p->nonce}));
    }
  }

  void answer_legacy(const wire::message& m) {
    if (auto* h = std::get_if<wire::hello>(&m)) {
      static_cast<void>(tls->send(wire::hello{1, 1, "backup-1"}));
      if (h->min_version > 1)
        static_cast<void>(tls->send(wire::denied{wire::denial_reason::unsupported_version, "1"}));
    } else if (std::holds_alternative<wire::legacy_login>(m)) {
      static_cast<void>(tls->send(wire::legacy_accepted{id.sha256(), "vbr-1"}));
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
  bool flap = false;  // the server closes every connection as soon as TLS is up
  caf::actor owner;
  // registry forwarding (rotation nudges)
  caf::actor server_actor;
  // injected time and randomness
  // The real time at the start: the certificates are generated valid from now.
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  // What the renewal actor stand-in heard.
  std::vector<watched_certificate> watched;
  std::vector<std::string> unwatched;
  uint64_t (*random)(uint64_t max) = [](uint64_t max) { return max; };
};

using world_ptr = std::shared_ptr<world>;

inline caf::behavior fake_supervisor(caf::event_based_actor* self, world_ptr w) {
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

inline caf::behavior fake_broker(caf::event_based_actor* self, world_ptr w) {
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
        if (w->flap && w->server.tls && w->server.tls->is_active()) {
          w->open.reset();
          self->send(w->owner, disconnected_atom::value, hdl);
        }
      },
      [=](close_atom, connection_handle hdl) {
        ++w->closes;
        if (w->open && *w->open == hdl) w->open.reset();
      },
  };
}

inline caf::behavior fake_renewal(caf::event_based_actor*, world_ptr w) {
  return {
      [=](watch_atom, const watched_certificate& c) { w->watched.push_back(c); },
      [=](watch_atom, remove_atom, const std::string& id) { w->unwatched.push_back(id); },
  };
}

// Takes the world only because CAF 0.17 dereferences a null argument tuple when it spawns a
// function without arguments, which UBSan reports (docs/platform.md).
inline caf::behavior quiet_bus(world_ptr) {
  return {[](published_atom, uint64_t) {}, [](published_atom, std::vector<event_record>&) {}};
}

class server_actor_fixture : public ::testing::Test {
 protected:
  /// Adjusts the daemon settings before the context is made.
  virtual void configure(settings&) {}
  /// Spawns the fixture's extra actors into `ctx` (the supervisor stand-in exists).
  virtual void spawn_more() {}

  test::temp_dir dir{"certfleet-server-actor"};
  world_ptr w = std::make_shared<world>();
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  context_ptr ctx;
  caf::actor supervisor;
  caf::actor server;
  server_record rec;

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
    configure(s);
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
    ctx->renewal = sys->spawn(fake_renewal, w);
    supervisor = sys->spawn(fake_supervisor, w);
    spawn_more();
    rec.id = "s-00000001";
    rec.name = "backup-1";
    rec.host = "127.0.0.1";
    rec.port = 10001;
    rec.account = "backup-admin";
    rec.state = server_state::pending_registration;
  }

  void TearDown() override {
    for (auto* a : {&server, &supervisor, &ctx->broker, &ctx->bus, &ctx->storage, &ctx->renewal,
                    &ctx->rotation})
      if (*a) caf::anon_send_exit(*a, caf::exit_reason::kill);
    w->owner = nullptr;
    w->server_actor = nullptr;
    sched->run();
    server = supervisor = ctx->broker = ctx->bus = ctx->storage = ctx->renewal = ctx->rotation =
        nullptr;
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
};

}  // namespace certfleet::test
