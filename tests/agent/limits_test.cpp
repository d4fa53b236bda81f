// What a stranger can hold of a real agent on 127.0.0.1: a TLS handshake deadline that stalled and
// trickling clients cannot outlast, a registration deadline after TLS, a
// deadline for a whole message, a cap on unregistered connections (in total and per source
// address) and on what an unregistered client may buffer, and the idle timeout of a registered
// manager's connection. Deadlines are shortened for the test; a healthy client is served
// throughout.
#include <thread>

#include <gtest/gtest.h>

#include "agent/server.hpp"
#include "agent/state.hpp"
#include "crypto/password_hash.hpp"
#include "tests/agent/test_support.hpp"

namespace certfleet::agent {
namespace {

using namespace certfleet::testing;

constexpr auto handshake_deadline = 800ms;

class limits_test : public ::testing::Test {
 protected:
  void SetUp() override {
    account_book book;
    ASSERT_FALSE(
        book.put({"admin", role::administrator,
                  hash_password(to_secret("admin-pw"), hash_profile::simulation).value()}));
    ASSERT_FALSE(book.save(dir_.path() / "accounts.json"));
    opts_.handshake_timeout = 5000ms;
    opts_.idle_timeout = 30'000ms;
    opts_.registration_timeout = 30'000ms;
    opts_.message_timeout = 30'000ms;
    opts_.threads = 1;  // everything shares one event loop
  }

  void start() {
    auto agent = open_single_agent(dir_.path());
    ASSERT_TRUE(agent) << describe(agent.error());
    store_ = std::move(agent->store);
    std::vector<std::unique_ptr<endpoint>> eps;
    eps.push_back(std::move(agent->ep));
    server_ = std::make_unique<agent_server>(opts_, std::move(eps),
                                             std::vector<listen_address>{{"127.0.0.1", 0}});
    ASSERT_FALSE(server_->start());
    port_ = server_->address(0).port;
  }

  /// A manager that registers and collects once on a fresh connection.
  void expect_served(const identity& manager) {
    test_client c(manager, "127.0.0.1", port_);
    ASSERT_FALSE(c.connect(3000ms));
    ASSERT_FALSE(c.send(wire::hello{2, 2, "good manager"}));
    ASSERT_FALSE(c.send(
        wire::register_request{"admin", to_secret("admin-pw"), manager.sha256(), "good manager"}));
    auto hello = c.receive(3000ms);
    ASSERT_TRUE(hello) << describe(hello.error());
    auto answer = c.receive(3000ms);
    ASSERT_TRUE(answer) << describe(answer.error());
    ASSERT_TRUE(std::holds_alternative<wire::registered>(*answer));
    ASSERT_FALSE(c.send(wire::collect{}));
    auto inv = c.receive(3000ms);
    ASSERT_TRUE(inv) << describe(inv.error());
    EXPECT_TRUE(std::holds_alternative<wire::inventory>(*inv));
  }

  temp_dir dir_;
  server_options opts_;
  std::unique_ptr<agent_store> store_;
  std::unique_ptr<agent_server> server_;
  uint16_t port_ = 0;
};

TEST_F(limits_test, a_client_that_completes_tls_and_never_registers_is_refused_at_the_deadline) {
  opts_.registration_timeout = 800ms;
  start();
  test_client c(make_identity("stranger"), "127.0.0.1", port_);
  ASSERT_FALSE(c.connect());
  auto established = steady::now();
  ASSERT_FALSE(c.send(wire::hello{2, 2, "stranger"}));
  auto answer = c.receive(5000ms);
  auto after = steady::now() - established;
  ASSERT_TRUE(answer) << describe(answer.error());
  auto* d = std::get_if<wire::denied>(&*answer);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->reason, wire::denial_reason::not_registered);
  EXPECT_NE(d->detail.find("did not register within 800 ms"), std::string::npos) << d->detail;
  EXPECT_GE(after, 800ms);
  EXPECT_LT(after, 2500ms);
}

TEST_F(limits_test, a_client_trickling_a_message_is_dropped_at_the_message_deadline) {
  // The idle timeout never fires (a byte every 200 ms) and the registration deadline is far
  // away: only the deadline for the whole message ends this.
  opts_.idle_timeout = 3000ms;
  opts_.message_timeout = 800ms;
  start();
  auto stranger = make_identity("trickler");
  test_client c(stranger, "127.0.0.1", port_);
  ASSERT_FALSE(c.connect());
  ASSERT_FALSE(c.send(wire::hello{2, 2, "trickler"}));
  auto bytes =
      c.encrypt(wire::register_request{"admin", to_secret("wrong"), stranger.sha256(), "t"});
  ASSERT_TRUE(bytes);
  ASSERT_GT(bytes->size(), 40u);
  auto first_byte = steady::now();
  std::optional<milliseconds> closed_after;
  for (size_t i = 0; i < bytes->size() && !closed_after; ++i) {
    if (::send(c.fd(), &(*bytes)[i], 1, MSG_NOSIGNAL) != 1) {
      closed_after = std::chrono::duration_cast<milliseconds>(steady::now() - first_byte);
      break;
    }
    if (time_until_closed(c.fd(), steady::now(), 200ms))
      closed_after = std::chrono::duration_cast<milliseconds>(steady::now() - first_byte);
  }
  ASSERT_TRUE(closed_after) << "the trickler sent its whole message";
  EXPECT_GE(*closed_after, 800ms);
  EXPECT_LT(*closed_after, 2500ms);
}

TEST_F(limits_test, an_unregistered_client_cannot_make_the_agent_buffer_a_large_message) {
  start();
  auto stranger = make_identity("big");
  test_client c(stranger, "127.0.0.1", port_);
  ASSERT_FALSE(c.connect());
  ASSERT_FALSE(c.send(wire::hello{2, 2, "big"}));
  // 4,000 jobs with long names: about 1 MB, under the frame limit, far over any registration.
  wire::inventory huge;
  for (int i = 0; i < 4000; ++i)
    huge.jobs.push_back({std::string(200, 'j'), "full", "success", 0, 0});
  auto bytes = c.encrypt(huge);
  ASSERT_TRUE(bytes) << describe(bytes.error());
  ASSERT_GT(bytes->size(), 500'000u);
  size_t sent = 0;
  while (sent < bytes->size()) {
    ssize_t n = ::send(c.fd(), bytes->data() + sent, std::min<size_t>(16384, bytes->size() - sent),
                       MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  EXPECT_TRUE(time_until_closed(c.fd(), steady::now(), 3000ms)) << "still open";
}

TEST_F(limits_test, over_the_per_source_cap_the_oldest_unregistered_connections_are_closed) {
  opts_.max_unregistered_per_source = 4;
  start();
  std::vector<int> fds;
  for (int i = 0; i < 6; ++i) {
    fds.push_back(tcp_connect("127.0.0.1", port_, 2000ms));
    ASSERT_GE(fds.back(), 0);
    std::this_thread::sleep_for(20ms);  // distinct accept times, in order
  }
  auto now = steady::now();
  EXPECT_TRUE(time_until_closed(fds[0], now, 2000ms)) << "the oldest was closed";
  EXPECT_TRUE(time_until_closed(fds[1], now, 2000ms));
  for (int i = 2; i < 6; ++i)
    EXPECT_FALSE(time_until_closed(fds[static_cast<size_t>(i)], steady::now(), 100ms))
        << "connection " << i << " was closed";
  for (int fd : fds) ::close(fd);
}

TEST_F(limits_test, two_hundred_idle_connections_do_not_keep_a_good_client_from_being_served) {
  opts_.max_unregistered_per_source = 64;
  start();
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) {
    int fd = tcp_connect("127.0.0.1", port_, 2000ms);
    ASSERT_GE(fd, 0) << "connection " << i;
    idle.push_back(fd);
  }
  auto started = steady::now();
  expect_served(make_identity("good manager"));
  EXPECT_LT(steady::now() - started, 3000ms);
  // Unregistered connections stay within the cap (the good one registered).
  EXPECT_LE(server_->connection_count(), 64u + 1u);
  for (int fd : idle) ::close(fd);
}

TEST_F(limits_test, a_registered_managers_idle_connection_is_closed_at_the_idle_timeout) {
  opts_.idle_timeout = 700ms;
  start();
  auto manager = make_identity("manager");
  test_client c(manager, "127.0.0.1", port_);
  ASSERT_FALSE(c.connect());
  ASSERT_FALSE(c.send(wire::hello{2, 2, "m"}));
  ASSERT_FALSE(
      c.send(wire::register_request{"admin", to_secret("admin-pw"), manager.sha256(), "m"}));
  ASSERT_TRUE(c.receive());                                             // hello
  ASSERT_TRUE(std::holds_alternative<wire::registered>(*c.receive()));  // registered
  auto last_sent = steady::now();
  // Activity keeps it open past the timeout...
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(400ms);
    ASSERT_FALSE(c.send(wire::ping{static_cast<uint64_t>(i)}));
    auto pong = c.receive(2000ms);
    ASSERT_TRUE(pong) << "closed while active: " << describe(pong.error());
    last_sent = steady::now();
  }
  // ...and silence closes it.
  auto closed = time_until_closed(c.fd(), last_sent, 3000ms);
  ASSERT_TRUE(closed) << "never closed";
  EXPECT_GE(*closed, 700ms);
  EXPECT_LT(*closed, 2000ms);
}

// -- the TLS handshake deadline --------------------------------------------------------------

TEST_F(limits_test, a_stalled_client_is_dropped_after_the_deadline_without_delaying_others) {
  opts_.handshake_timeout = handshake_deadline;
  start();
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

TEST_F(limits_test, a_client_trickling_one_byte_at_a_time_cannot_outlast_the_deadline) {
  opts_.handshake_timeout = handshake_deadline;
  start();
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
