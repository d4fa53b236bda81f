// Liveness of a trusted server's connection (actors/server_actor.cpp, daemon.peer_timeout_s), on
// the deterministic stage of tests/actors/server_world.hpp: the coordinator's clock is the actor
// clock the server actor reads, so a quiet or silent server is simulated by advancing it. A server
// that stops answering (`answer_messages = false`) still takes every byte, as the kernel of a
// process stopped with SIGSTOP does.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actors/context.hpp"
#include "tests/actors/server_world.hpp"

namespace certfleet::test {
namespace {

class server_liveness_test : public server_actor_fixture {
 protected:
  void configure(settings& s) override {
    s.daemon.peer_timeout_s = 9;
    // Far beyond the test: the only traffic is what liveness itself causes.
    s.daemon.collect_interval_s = 3600;
  }

  /// Registers the server with its expected thumbprint: trusted, connected and collected once.
  void start_online() {
    register_trusted();
    ASSERT_TRUE(connected()) << (w->presence ? w->presence->last_error : "no presence");
    ASSERT_EQ(w->server.count(wire::message_type::collect), 1u);
  }

  bool connected() const { return w->presence && w->presence->connected; }
  size_t pings() const { return w->server.count(wire::message_type::ping); }

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
  w->server.answer_messages = false;
  advance(8999ms);
  EXPECT_TRUE(connected()) << "not before peer_timeout_s of silence";
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
  w->server.answer_messages = true;
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
}  // namespace certfleet::test
