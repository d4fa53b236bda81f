// The agent's side of the manager certificate rotation against a real single agent (state dir,
// RocksDB, epoll server) on 127.0.0.1 port 0: a registered manager stores its successor over its
// own session, the successor retires it, and nothing else is accepted.
#include <gtest/gtest.h>

#include <atomic>

#include "agent/server.hpp"
#include "agent/state.hpp"
#include "crypto/password_hash.hpp"
#include "tests/agent/single_agent_test.hpp"
#include "tests/agent/test_support.hpp"

namespace certfleet::agent {
namespace {

using namespace certfleet::testing;

class manager_rotation : public single_agent_test {
 protected:
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
