// The agent's side of the manager certificate rotation against a real single agent (state dir,
// RocksDB, epoll server) on 127.0.0.1 port 0: a registered manager stores its successor over its
// own session, the successor retires it, and nothing else is accepted.
#include <gtest/gtest.h>

#include <atomic>

#include "agent/server.hpp"
#include "agent/state.hpp"
#include "crypto/password_hash.hpp"
#include "tests/agent/test_support.hpp"

namespace certfleet::agent {
namespace {

using namespace certfleet::testing;

class manager_rotation : public ::testing::Test {
 protected:
  void SetUp() override {
    account_book book;
    ASSERT_FALSE(book.put({"admin", role::administrator, hash("admin-pw")}));
    ASSERT_FALSE(book.put({"viewer", role::viewer, hash("viewer-pw")}));
    ASSERT_FALSE(book.save(dir_.path() / "accounts.json"));
    single_agent_options so;
    so.lockout = lockout_policy{3, std::chrono::minutes{15}, std::chrono::minutes{5}};
    so.clock = [this] { return std::chrono::system_clock::now() + skew_.load(); };
    auto agent = open_single_agent(dir_.path(), so);
    ASSERT_TRUE(agent) << describe(agent.error());
    store_ = std::move(agent->store);
    std::vector<std::unique_ptr<endpoint>> eps;
    eps.push_back(std::move(agent->ep));
    server_options opts;
    opts.handshake_timeout = 5000ms;
    server_ = std::make_unique<agent_server>(opts, std::move(eps),
                                             std::vector<listen_address>{{"127.0.0.1", 0}});
    ASSERT_FALSE(server_->start());
    port_ = server_->address(0).port;
  }

  void stop_agent() {
    server_.reset();
    store_.reset();
  }

  static std::string hash(const std::string& pw) {
    return hash_password(to_secret(pw), hash_profile::simulation).value();
  }

  std::unique_ptr<test_client> connect(const identity& id) {
    auto c = std::make_unique<test_client>(id, "127.0.0.1", port_);
    auto err = c->connect();
    EXPECT_FALSE(err) << describe(err);
    return c;
  }

  // hello + register_request; returns the answer after the agent's hello.
  wire::message register_with(test_client& c, const std::string& account, const std::string& pw,
                              const thumbprint& claimed) {
    EXPECT_FALSE(c.send(wire::hello{2, 2, "test manager"}));
    EXPECT_FALSE(c.send(wire::register_request{account, to_secret(pw), claimed, "test manager"}));
    auto first = c.receive();
    EXPECT_TRUE(first && std::holds_alternative<wire::hello>(*first));
    auto answer = c.receive();
    EXPECT_TRUE(answer) << (answer ? "" : describe(answer.error()));
    return answer ? *answer : wire::message{wire::error_message{}};
  }

  static wire::denial_reason denial_of(const wire::message& m) {
    auto* d = std::get_if<wire::denied>(&m);
    EXPECT_NE(d, nullptr) << "expected denied, got " << wire::to_string(wire::type_of(m));
    return d ? d->reason : wire::denial_reason::internal_error;
  }

  std::string managers_list() {
    auto r =
        run_command(agent_binary() + " --state-dir " + dir_.path().string() + " managers list");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  }

  temp_dir dir_;
  std::atomic<std::chrono::seconds> skew_{std::chrono::seconds{0}};
  identity manager_ = make_identity("manager");
  std::unique_ptr<agent_store> store_;
  std::unique_ptr<agent_server> server_;
  uint16_t port_ = 0;
  /// A registered session of `manager_`, past hello.
  std::unique_ptr<test_client> registered_session() {
    auto c = connect(manager_);
    auto answer = register_with(*c, "admin", "admin-pw", manager_.sha256());
    EXPECT_TRUE(std::holds_alternative<wire::registered>(answer));
    return c;
  }

  /// A session of `id` past hello, as a registered manager opens it.
  std::unique_ptr<test_client> session_of(const identity& id) {
    auto c = connect(id);
    EXPECT_FALSE(c->send(wire::hello{2, 2, "test manager"}));
    return c;
  }

  template <class T>
  static const T& as(const caf::expected<wire::message>& m) {
    static T none{};
    EXPECT_TRUE(m) << describe(m.error());
    if (!m) return none;
    auto* x = std::get_if<T>(&*m);
    EXPECT_NE(x, nullptr) << "got " << wire::to_string(wire::type_of(*m));
    return x ? *x : none;
  }
};

TEST_F(manager_rotation, a_registered_manager_stores_its_successor_and_both_are_accepted) {
  auto c = registered_session();
  auto next = make_identity("manager-next");
  ASSERT_FALSE(c->send(wire::rotate_manager_certificate{next.certificate_der()}));
  EXPECT_EQ(as<wire::manager_certificate_stored>(c->receive()).stored, next.sha256());
  // The session goes on: collection still works after the acknowledgement.
  ASSERT_FALSE(c->send(wire::collect{}));
  EXPECT_FALSE(as<wire::inventory>(c->receive()).jobs.empty());

  // The successor is a registered manager now: served without credentials.
  auto s = session_of(next);
  ASSERT_FALSE(s->send(wire::ping{7}));
  as<wire::hello>(s->receive());
  EXPECT_EQ(as<wire::pong>(s->receive()).nonce, 7u);
  // The old certificate is still accepted until it is retired.
  auto old = session_of(manager_);
  ASSERT_FALSE(old->send(wire::ping{8}));
  as<wire::hello>(old->receive());
  EXPECT_EQ(as<wire::pong>(old->receive()).nonce, 8u);

  c.reset();
  s.reset();
  old.reset();
  stop_agent();
  auto out = managers_list();
  EXPECT_NE(out.find(manager_.sha256().to_string()), std::string::npos) << out;
  EXPECT_NE(out.find(next.sha256().to_string()), std::string::npos) << out;
}

TEST_F(manager_rotation, the_successor_retires_its_predecessor_and_the_old_certificate_is_refused) {
  auto next = make_identity("manager-next");
  {
    auto c = registered_session();
    ASSERT_FALSE(c->send(wire::rotate_manager_certificate{next.certificate_der()}));
    as<wire::manager_certificate_stored>(c->receive());
  }
  {
    // The old certificate cannot retire itself nor its successor.
    auto old = session_of(manager_);
    as<wire::hello>(old->receive());
    ASSERT_FALSE(old->send(wire::retire_manager_certificate{next.sha256()}));
    EXPECT_EQ(as<wire::rotation_refused>(old->receive()).request,
              wire::message_type::retire_manager_certificate);
  }
  auto s = session_of(next);
  as<wire::hello>(s->receive());
  ASSERT_FALSE(s->send(wire::retire_manager_certificate{manager_.sha256()}));
  EXPECT_EQ(as<wire::manager_certificate_retired>(s->receive()).retired, manager_.sha256());
  // Idempotent: retiring it again is acknowledged again.
  ASSERT_FALSE(s->send(wire::retire_manager_certificate{manager_.sha256()}));
  EXPECT_EQ(as<wire::manager_certificate_retired>(s->receive()).retired, manager_.sha256());

  // The retired certificate is a stranger now: it may only register.
  auto old = session_of(manager_);
  ASSERT_FALSE(old->send(wire::collect{}));
  auto refused = old->receive();
  ASSERT_TRUE(refused);
  ASSERT_TRUE(std::holds_alternative<wire::denied>(*refused));
  EXPECT_EQ(std::get<wire::denied>(*refused).reason, wire::denial_reason::not_registered);

  s.reset();
  old.reset();
  stop_agent();
  auto out = managers_list();
  EXPECT_EQ(out.find(manager_.sha256().to_string()), std::string::npos) << out;
  EXPECT_NE(out.find(next.sha256().to_string()), std::string::npos) << out;
}

TEST_F(manager_rotation, a_stranger_cannot_offer_a_certificate) {
  registered_session().reset();
  auto stranger = make_identity("stranger");
  auto c = session_of(stranger);
  ASSERT_FALSE(c->send(wire::rotate_manager_certificate{make_identity("x").certificate_der()}));
  auto answer = c->receive();
  ASSERT_TRUE(answer);
  ASSERT_TRUE(std::holds_alternative<wire::denied>(*answer));
  EXPECT_EQ(std::get<wire::denied>(*answer).reason, wire::denial_reason::not_registered);
  c.reset();
  stop_agent();
  EXPECT_EQ(managers_list().find(stranger.sha256().to_string()), std::string::npos);
}

TEST_F(manager_rotation, an_unreadable_or_expired_certificate_is_refused_and_the_session_stays_up) {
  auto c = registered_session();
  ASSERT_FALSE(c->send(wire::rotate_manager_certificate{{0x30, 0x03, 0x02, 0x01, 0x01}}));
  EXPECT_NE(as<wire::rotation_refused>(c->receive()).detail.find("not a readable"),
            std::string::npos);
  auto expired = identity::generate({"old", "certfleet tests"}, std::chrono::hours{1}, "old",
                                    std::chrono::system_clock::now() - std::chrono::hours{2});
  ASSERT_TRUE(expired);
  ASSERT_FALSE(c->send(wire::rotate_manager_certificate{expired->certificate_der()}));
  EXPECT_NE(as<wire::rotation_refused>(c->receive()).detail.find("expired"), std::string::npos);
  ASSERT_FALSE(c->send(wire::ping{9}));
  EXPECT_EQ(as<wire::pong>(c->receive()).nonce, 9u);
}

}  // namespace
}  // namespace certfleet::agent
