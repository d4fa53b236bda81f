// Liveness of a trusted server's connection (actors/server_actor.cpp, daemon.peer_timeout_s), on
// CAF's deterministic test coordinator: the coordinator's clock is the actor clock the server actor
// reads, so a quiet or silent server is simulated by advancing it.
//
// The real parts: the server actor, its TLS client session, the backup server's TLS server session
// and a RocksDB store in a temp directory. Stand-ins: the supervisor (grants slots, hears
// presence), the broker (moves bytes between the two TLS sessions in memory) and the connector
// (hands over a file descriptor).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <caf/all.hpp>
#include <caf/io/connection_handle.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/atoms.hpp"
#include "actors/context.hpp"
#include "actors/server_actor.hpp"
#include "actors/storage_actor.hpp"
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

/// The backup server: a real TLS server session that answers hello, collect and ping as the agent
/// does, or, once `stopped`, still takes every byte (the kernel acknowledges them) and answers
/// nothing, like a process stopped with SIGSTOP.
struct backup_server {
  identity id = make_identity("backup-1.example");
  std::shared_ptr<tls_session_cache> cache = std::make_shared<tls_session_cache>(16);
  bool stopped = false;
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
        id, [](const thumbprint&) { return caf::error{}; }, cache, std::move(o), tls_options{});
  }

  std::vector<char> feed(const std::vector<char>& bytes) {
    if (stopped) return {};
    static_cast<void>(tls->received(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    auto msgs = std::move(inbox);
    inbox.clear();
    for (auto& m : msgs) answer(m);
    std::vector<char> reply(out.begin(), out.end());
    out.clear();
    return reply;
  }

  void answer(const wire::message& m) {
    received.push_back(m);
    if (std::holds_alternative<wire::hello>(m)) {
      static_cast<void>(tls->send(wire::hello{2, 2, "backup-1"}));
    } else if (std::holds_alternative<wire::collect>(m)) {
      wire::inventory inv;
      inv.jobs.push_back({"nightly", "full", "success", 1700000000000, 42});
      static_cast<void>(tls->send(inv));
    } else if (auto* p = std::get_if<wire::ping>(&m)) {
      static_cast<void>(tls->send(wire::pong{p->nonce}));
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
  std::optional<server_presence> presence;
  int connects = 0;
  int64_t next_handle = 0;
  std::optional<connection_handle> open;
  int closes = 0;
  // What the manager wrote while the server was stopped (it reads nothing then).
  int writes_while_stopped = 0;
  caf::actor owner;
};

using world_ptr = std::shared_ptr<world>;

caf::behavior fake_supervisor(caf::event_based_actor* self, world_ptr w) {
  return {
      [=](slot_atom) {
        self->send(caf::actor_cast<caf::actor>(self->current_sender()), slot_atom::value);
      },
      [=](release_atom) {},
      [=](state_atom, const server_presence& p) { w->presence = p; },
  };
}

caf::behavior fake_broker(caf::event_based_actor* self, world_ptr w) {
  return {
      [=](adopt_atom, int fd, const caf::actor& owner) {
        ::close(fd);
        auto hdl = connection_handle::from_int(++w->next_handle);
        w->open = hdl;
        w->owner = owner;
        w->server.accept();
        self->send(owner, adopted_atom::value, hdl);
      },
      [=](write_atom, connection_handle hdl, const std::vector<char>& bytes) {
        if (!w->open || *w->open != hdl) return;
        if (w->server.stopped) ++w->writes_while_stopped;
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
// function without arguments (docs/platform.md).
caf::behavior quiet_bus(world_ptr) {
  return {[](published_atom, uint64_t) {}, [](published_atom, std::vector<event_record>&) {}};
}

class server_liveness_test : public ::testing::Test {
 protected:
  test::temp_dir dir{"certfleet-server-liveness"};
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
    s.daemon.backoff_initial_ms = 100;
    s.daemon.backoff_max_ms = 500;
    s.daemon.peer_timeout_s = 9;
    // Far beyond the test: the only traffic is what liveness itself causes.
    s.daemon.collect_interval_s = 3600;
    auto key = master_key::create(dir / "master.key");
    ASSERT_TRUE(key) << describe(key.error());
    ctx = std::make_shared<daemon_context>(s, std::move(*key), make_identity("certfleet-manager"));
    auto store = state_store::open(dir / "db");
    ASSERT_TRUE(store) << describe(store.error());
    ctx->store = std::move(*store);
    ctx->sessions = std::make_shared<tls_session_cache>(16);
    ctx->random = [](uint64_t max) { return max; };
    auto wp = w;
    ctx->connect_to = [wp](const std::string&, uint16_t, std::chrono::milliseconds,
                           connector::done_fn done) {
      ++wp->connects;
      done(::open("/dev/null", O_RDONLY | O_CLOEXEC), {});
    };
    ctx->broker = sys->spawn(fake_broker, w);
    ctx->bus = sys->spawn(quiet_bus, w);
    ctx->storage = spawn_storage_actor(*sys, ctx, false);
    supervisor = sys->spawn(fake_supervisor, w);
    rec.id = "s-00000001";
    rec.name = "backup-1";
    rec.host = "127.0.0.1";
    rec.port = 10001;
    rec.state = server_state::trusted;
    rec.pinned = w->server.id.sha256();
    rec.validated_by = "admin";
  }

  void TearDown() override {
    for (auto* a : {&server, &supervisor, &ctx->broker, &ctx->bus, &ctx->storage})
      if (*a) caf::anon_send_exit(*a, caf::exit_reason::kill);
    w->owner = nullptr;
    sched->run();
    server = supervisor = ctx->broker = ctx->bus = ctx->storage = nullptr;
  }

  /// Persists the trusted record and spawns its actor: it connects and collects once.
  void start_online() {
    ASSERT_TRUE(ctx->store->put_server(rec, {}, true));
    server = spawn_server_actor(*sys, ctx, server_peers{supervisor, supervisor, supervisor}, rec);
    sched->run();
    ASSERT_TRUE(connected()) << (w->presence ? w->presence->last_error : "no presence");
    ASSERT_EQ(w->server.count(wire::message_type::collect), 1u);
  }

  /// Lets `d` pass on the coordinator's clock, then runs what became due.
  void advance(std::chrono::milliseconds d) {
    sched->advance_time(d);
    sched->run();
  }

  bool connected() const { return w->presence && w->presence->connected; }
  size_t pings() const { return w->server.count(wire::message_type::ping); }

  server_record stored() {
    auto r = ctx->store->get_server(rec.id);
    EXPECT_TRUE(r && *r);
    return r && *r ? **r : server_record{};
  }

  std::vector<event_record> events_of(const std::string& type) {
    std::vector<event_record> out;
    auto evs = ctx->store->read_events(0, 1000);
    EXPECT_TRUE(evs);
    if (evs)
      for (auto& e : *evs)
        if (e.server_id == rec.id && e.type == type) out.push_back(e);
    return out;
  }
};

TEST_F(server_liveness_test, a_quiet_server_is_pinged_after_a_third_of_peer_timeout) {
  start_online();
  advance(2999ms);
  EXPECT_EQ(pings(), 0u) << "nothing is sent while the last reply is recent";
  advance(1ms);
  EXPECT_EQ(pings(), 1u);
  EXPECT_TRUE(connected());
}

TEST_F(server_liveness_test, a_server_that_answers_pings_stays_connected_past_peer_timeout) {
  start_online();
  for (int i = 0; i < 30; ++i) advance(1s);
  EXPECT_TRUE(connected());
  EXPECT_EQ(w->closes, 0);
  EXPECT_EQ(w->connects, 1);
  // One ping per third of peer_timeout_s of quiet: about 10 in 30 s, never a flood.
  EXPECT_GE(pings(), 8u);
  EXPECT_LE(pings(), 10u);
  EXPECT_TRUE(stored().last_error.empty());
}

TEST_F(server_liveness_test, any_reply_counts_as_liveness_so_a_busy_server_is_never_pinged) {
  ctx->cfg.daemon.collect_interval_s = 2;  // a collection every 1.8-2.2 s: below 3 s of quiet
  start_online();
  // Small steps, so that each reply arrives when its collection is due rather than together with
  // a later timer.
  for (int i = 0; i < 300; ++i) advance(100ms);
  EXPECT_EQ(pings(), 0u);
  EXPECT_GE(w->server.count(wire::message_type::collect), 10u);
  EXPECT_TRUE(connected());
}

TEST_F(server_liveness_test, a_stopped_server_is_declared_dead_at_peer_timeout_and_stays_trusted) {
  start_online();
  w->server.stopped = true;
  advance(8999ms);
  EXPECT_TRUE(connected()) << "not before peer_timeout_s of silence";
  EXPECT_EQ(w->writes_while_stopped, 1) << "one ping, then the deadline";
  advance(1ms);
  EXPECT_FALSE(connected());
  EXPECT_EQ(w->closes, 1) << "the manager closed the connection";
  ASSERT_TRUE(w->presence);
  auto r = stored();
  EXPECT_EQ(r.state, server_state::trusted);
  const std::string reason =
      "no data from the server for 9 s (daemon.peer_timeout_s): the connection was half-open or "
      "the server stopped; reconnecting";
  EXPECT_EQ(w->presence->last_error, reason);
  auto downs = events_of("connection_down");
  ASSERT_EQ(downs.size(), 1u);
  EXPECT_NE(downs[0].details.find("half-open"), std::string::npos) << downs[0].details;

  // Resumed (SIGCONT): the backoff reconnects and it is collected again.
  w->server.stopped = false;
  advance(1s);
  EXPECT_EQ(w->connects, 2);
  EXPECT_TRUE(connected());
  EXPECT_EQ(w->server.count(wire::message_type::collect), 2u);
  EXPECT_TRUE(stored().last_error.empty());
}

TEST_F(server_liveness_test, a_connection_lost_otherwise_gets_a_fresh_watch_on_reconnect) {
  start_online();
  advance(1s);
  // The server closes; the first connection's liveness timer is still pending.
  caf::anon_send(server, disconnected_atom::value, *w->open);
  w->open.reset();
  sched->run();
  ASSERT_FALSE(connected());
  advance(1s);
  ASSERT_TRUE(connected());
  ASSERT_EQ(w->connects, 2);
  // The new connection's peer_timeout_s counts from its own last reply: no ping 2.9 s after it,
  // although the first connection's timer fired meanwhile.
  advance(2900ms);
  EXPECT_EQ(pings(), 0u);
  for (int i = 0; i < 30; ++i) advance(1s);
  EXPECT_TRUE(connected());
  EXPECT_EQ(w->connects, 2);
  EXPECT_LE(pings(), 10u) << "one watch per connection, not one per connection ever made";
}

TEST(peer_socket_options, a_connection_to_a_server_gets_peer_timeout_as_tcp_user_timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  daemon_settings cfg;
  cfg.peer_timeout_s = 7;
  apply_peer_socket_options(fd, cfg);
  unsigned int timeout_ms = 0;
  socklen_t len = sizeof timeout_ms;
  ASSERT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms, &len), 0);
  EXPECT_EQ(timeout_ms, 7000u);
  ::close(fd);
}

}  // namespace
}  // namespace certfleet
