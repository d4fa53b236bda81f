// Handshake deadlines against a real agent on 127.0.0.1: stalled and trickling clients are
// dropped once the (test-shortened) deadline passes and never hold up anyone else.
#include <gtest/gtest.h>

#include "agent/server.hpp"
#include "agent/state.hpp"
#include "tests/agent/test_support.hpp"

namespace certfleet::agent {
namespace {

using namespace certfleet::testing;

constexpr auto handshake_deadline = 800ms;

class handshake_deadline_test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto agent = open_single_agent(dir_.path());
    ASSERT_TRUE(agent) << describe(agent.error());
    store_ = std::move(agent->store);
    std::vector<std::unique_ptr<endpoint>> eps;
    eps.push_back(std::move(agent->ep));
    server_options opts;
    opts.handshake_timeout = handshake_deadline;
    // One thread: the stalled client and the healthy one share the same event loop.
    opts.threads = 1;
    server_ = std::make_unique<agent_server>(opts, std::move(eps),
                                             std::vector<listen_address>{{"127.0.0.1", 0}});
    ASSERT_FALSE(server_->start());
    port_ = server_->address(0).port;
  }

  // Waits until the server closes `fd` (EOF or reset); returns how long that took, or nothing
  // when it is still open at `limit`.
  static std::optional<milliseconds> time_until_closed(int fd, steady::time_point since,
                                                       milliseconds limit) {
    auto until = since + limit;
    for (;;) {
      auto left = std::chrono::duration_cast<milliseconds>(until - steady::now()).count();
      if (left <= 0) return std::nullopt;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) != 1) return std::nullopt;
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return std::chrono::duration_cast<milliseconds>(steady::now() - since);
    }
  }

  temp_dir dir_;
  std::unique_ptr<agent_store> store_;
  std::unique_ptr<agent_server> server_;
  uint16_t port_ = 0;
};

TEST_F(handshake_deadline_test,
       a_stalled_client_is_dropped_after_the_deadline_without_delaying_others) {
  auto connected = steady::now();
  int stalled = tcp_connect("127.0.0.1", port_, 2000ms);
  ASSERT_GE(stalled, 0);

  // Meanwhile a healthy client completes its handshake well within the deadline.
  test_client healthy(make_identity("manager"), "127.0.0.1", port_);
  auto started = steady::now();
  ASSERT_FALSE(healthy.connect(handshake_deadline));
  EXPECT_LT(steady::now() - started, handshake_deadline / 2);
  EXPECT_EQ(server_->connection_count(), 2u);

  auto closed_after = time_until_closed(stalled, connected, handshake_deadline + 3000ms);
  ::close(stalled);
  ASSERT_TRUE(closed_after) << "the stalled connection was never dropped";
  EXPECT_GE(*closed_after, handshake_deadline);
  // The healthy, established connection survives the sweep.
  ASSERT_FALSE(healthy.send(wire::hello{2, 2, "m"}));
  EXPECT_FALSE(healthy.session().is_closed());
}

TEST_F(handshake_deadline_test, a_client_trickling_one_byte_at_a_time_cannot_outlast_the_deadline) {
  // A genuine ClientHello, produced by a session that never sees a socket.
  std::vector<uint8_t> hello;
  tls_outputs out;
  out.ciphertext = [&](const uint8_t* d, size_t n) { hello.insert(hello.end(), d, d + n); };
  out.message = [](wire::message&&) {};
  tls_client_session producer(
      make_identity("trickler"), [](const thumbprint&) { return caf::error{}; },
      std::make_shared<tls_session_cache>(1), "127.0.0.1", port_, std::move(out));
  ASSERT_GT(hello.size(), 20u);

  auto connected = steady::now();
  int fd = tcp_connect("127.0.0.1", port_, 2000ms);
  ASSERT_GE(fd, 0);
  // One byte per 200 ms: the whole hello would take far longer than the deadline.
  std::optional<milliseconds> closed_after;
  for (size_t i = 0; i < hello.size() && !closed_after; ++i) {
    if (::send(fd, &hello[i], 1, MSG_NOSIGNAL) != 1) {
      closed_after = std::chrono::duration_cast<milliseconds>(steady::now() - connected);
      break;
    }
    closed_after = time_until_closed(fd, steady::now(), 200ms);
    if (closed_after)
      closed_after = std::chrono::duration_cast<milliseconds>(steady::now() - connected);
  }
  ::close(fd);
  ASSERT_TRUE(closed_after) << "the trickler kept its connection through the whole hello";
  EXPECT_GE(*closed_after, handshake_deadline);
  EXPECT_LT(*closed_after, handshake_deadline + 1500ms);
}

}  // namespace
}  // namespace certfleet::agent
