// Registration against a real single agent (state dir, RocksDB, epoll server) on 127.0.0.1 port 0,
// driven by a blocking test client built from tls_client_session.
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

class registration : public single_agent_test {};

TEST_F(registration, an_administrator_is_accepted_and_the_manager_thumbprint_is_stored) {
  auto c = connect(manager_);
  auto answer = register_with(*c, "admin", "admin-pw", manager_.sha256());
  auto* reg = std::get_if<wire::registered>(&answer);
  ASSERT_NE(reg, nullptr) << wire::to_string(wire::type_of(answer));
  EXPECT_EQ(reg->server_thumbprint, *c->server_thumbprint());
  EXPECT_EQ(reg->server_thumbprint, server_->current_thumbprint(0));
  EXPECT_FALSE(reg->server_id.empty());

  // The same connection is now trusted: collection works.
  ASSERT_FALSE(c->send(wire::collect{}));
  auto inv = c->receive();
  ASSERT_TRUE(inv && std::holds_alternative<wire::inventory>(*inv));
  EXPECT_FALSE(std::get<wire::inventory>(*inv).jobs.empty());

  // A new connection with the registered certificate is trusted without credentials.
  auto again = connect(manager_);
  ASSERT_FALSE(again->send(wire::hello{2, 2, "test manager"}));
  ASSERT_FALSE(again->send(wire::ping{42}));
  auto hello = again->receive();
  ASSERT_TRUE(hello && std::holds_alternative<wire::hello>(*hello));
  auto pong = again->receive();
  ASSERT_TRUE(pong && std::holds_alternative<wire::pong>(*pong));
  EXPECT_EQ(std::get<wire::pong>(*pong).nonce, 42u);

  c.reset();
  again.reset();
  stop_agent();
  EXPECT_NE(managers_list().find(manager_.sha256().to_string()), std::string::npos);
}

TEST_F(registration, registering_again_with_the_same_certificate_is_accepted_idempotently) {
  for (int i = 0; i < 2; ++i) {
    auto c = connect(manager_);
    auto answer = register_with(*c, "admin", "admin-pw", manager_.sha256());
    EXPECT_TRUE(std::holds_alternative<wire::registered>(answer)) << i;
  }
  stop_agent();
  auto out = managers_list();
  auto first = out.find(manager_.sha256().to_string());
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(out.find(manager_.sha256().to_string(), first + 1), std::string::npos) << out;
}

TEST_F(registration, a_backup_viewer_gets_insufficient_role_and_nothing_is_stored) {
  auto c = connect(manager_);
  EXPECT_EQ(denial_of(register_with(*c, "viewer", "viewer-pw", manager_.sha256())),
            wire::denial_reason::insufficient_role);
  c.reset();
  stop_agent();
  EXPECT_EQ(managers_list().find(manager_.sha256().to_string()), std::string::npos);
}

TEST_F(registration, wrong_passwords_get_bad_credentials_and_then_lock_the_account_for_a_while) {
  auto c = connect(manager_);
  EXPECT_FALSE(c->send(wire::hello{2, 2, "test manager"}));
  auto attempt = [&](const std::string& pw, bool expect_hello) {
    EXPECT_FALSE(c->send(wire::register_request{"admin", to_secret(pw), manager_.sha256(), "m"}));
    if (expect_hello) {
      auto h = c->receive();
      EXPECT_TRUE(h && std::holds_alternative<wire::hello>(*h));
    }
    auto answer = c->receive();
    EXPECT_TRUE(answer);
    return answer ? denial_of(*answer) : wire::denial_reason::internal_error;
  };
  EXPECT_EQ(attempt("guess-1", true), wire::denial_reason::bad_credentials);
  EXPECT_EQ(attempt("guess-2", false), wire::denial_reason::bad_credentials);
  EXPECT_EQ(attempt("guess-3", false), wire::denial_reason::bad_credentials);
  // Threshold reached: even the right password is refused while locked.
  EXPECT_EQ(attempt("admin-pw", false), wire::denial_reason::locked_out);

  // An unknown account is indistinguishable from a wrong password.
  auto other = connect(manager_);
  EXPECT_EQ(denial_of(register_with(*other, "nobody", "x", manager_.sha256())),
            wire::denial_reason::bad_credentials);

  // Six minutes later (injected clock) the lock has expired.
  skew_ = std::chrono::minutes{6};
  auto later = connect(manager_);
  EXPECT_TRUE(std::holds_alternative<wire::registered>(
      register_with(*later, "admin", "admin-pw", manager_.sha256())));
}

TEST_F(registration, a_message_thumbprint_that_differs_from_the_tls_certificate_is_a_mismatch) {
  auto other = make_identity("someone else");
  auto c = connect(manager_);
  EXPECT_EQ(denial_of(register_with(*c, "admin", "admin-pw", other.sha256())),
            wire::denial_reason::thumbprint_mismatch);
  c.reset();
  stop_agent();
  auto out = managers_list();
  EXPECT_EQ(out.find(other.sha256().to_string()), std::string::npos);
  EXPECT_EQ(out.find(manager_.sha256().to_string()), std::string::npos);
}

// The agent's refusal as the manager sees it: denied{reason} first, then the end of the session.
void expect_refused(test_client& c, wire::denial_reason reason, const std::string& context) {
  auto answer = c.receive();
  ASSERT_TRUE(answer) << context << ": " << describe(answer.error());
  auto* d = std::get_if<wire::denied>(&*answer);
  ASSERT_NE(d, nullptr) << context << ": got " << wire::to_string(wire::type_of(*answer));
  EXPECT_EQ(d->reason, reason) << context << ": " << wire::to_string(d->reason) << " " << d->detail;
  EXPECT_FALSE(d->detail.empty()) << context;
  EXPECT_TRUE(c.closed_without_message()) << context;
}

TEST_F(registration, an_unknown_certificate_is_refused_with_not_registered_and_gets_no_data) {
  auto c = connect(manager_);
  ASSERT_TRUE(std::holds_alternative<wire::registered>(
      register_with(*c, "admin", "admin-pw", manager_.sha256())));

  auto stranger = make_identity("stranger");
  for (const wire::message& request :
       {wire::message{wire::collect{}}, wire::message{wire::ping{7}}}) {
    auto s = connect(stranger);  // the handshake itself completes (registration must stay possible)
    ASSERT_FALSE(s->send(wire::hello{2, 2, "stranger"}));
    ASSERT_FALSE(s->send(request));
    // No hello, no inventory, no pong: only the refusal.
    expect_refused(*s, wire::denial_reason::not_registered,
                   wire::to_string(wire::type_of(request)));
  }
}

TEST_F(registration, a_message_before_hello_is_refused_as_a_protocol_violation) {
  auto c = connect(manager_);
  ASSERT_TRUE(std::holds_alternative<wire::registered>(
      register_with(*c, "admin", "admin-pw", manager_.sha256())));
  auto early = connect(manager_);
  ASSERT_FALSE(early->send(wire::collect{}));
  expect_refused(*early, wire::denial_reason::protocol_violation, "collect before hello");
}

TEST_F(registration, a_hello_without_a_common_version_is_refused_as_unsupported) {
  auto c = connect(manager_);
  ASSERT_FALSE(c->send(wire::hello{3, 4, "a manager from the future"}));
  // Its own range first, so that the manager can offer a version both speak next time.
  auto hello = c->receive();
  ASSERT_TRUE(hello && std::holds_alternative<wire::hello>(*hello));
  EXPECT_EQ(std::get<wire::hello>(*hello).max_version, wire::protocol_version);
  expect_refused(*c, wire::denial_reason::unsupported_version, "hello 3..4");
}

TEST_F(registration, a_revoked_manager_is_told_so_and_is_no_longer_trusted) {
  auto c = connect(manager_);
  ASSERT_TRUE(std::holds_alternative<wire::registered>(
      register_with(*c, "admin", "admin-pw", manager_.sha256())));
  auto revoked = server_->revoke_manager(0, manager_.sha256());
  ASSERT_TRUE(revoked && *revoked);
  expect_refused(*c, wire::denial_reason::manager_revoked, "open session at revocation");
  auto again = connect(manager_);
  ASSERT_FALSE(again->send(wire::hello{2, 2, "m"}));
  ASSERT_FALSE(again->send(wire::collect{}));
  expect_refused(*again, wire::denial_reason::not_registered, "collect after revocation");
}

TEST_F(registration, a_new_certificate_closes_the_sessions_made_with_the_old_one) {
  auto c = connect(manager_);
  ASSERT_TRUE(std::holds_alternative<wire::registered>(
      register_with(*c, "admin", "admin-pw", manager_.sha256())));
  auto old = server_->current_thumbprint(0);
  ASSERT_FALSE(server_->apply_fault(0, {fault_kind::regenerate, 0}));
  expect_refused(*c, wire::denial_reason::certificate_changed, "regenerate fault");
  // The next connection presents the new certificate.
  auto next = connect(manager_);
  EXPECT_NE(*next->server_thumbprint(), old);
  EXPECT_EQ(*next->server_thumbprint(), server_->current_thumbprint(0));
}

TEST_F(registration, a_certificate_regenerated_by_the_cli_closes_open_sessions_within_seconds) {
  auto c = connect(manager_);
  ASSERT_TRUE(std::holds_alternative<wire::registered>(
      register_with(*c, "admin", "admin-pw", manager_.sha256())));
  ASSERT_FALSE(c->send(wire::collect{}));
  auto inv = c->receive();
  ASSERT_TRUE(inv && std::holds_alternative<wire::inventory>(*inv));
  auto old = server_->current_thumbprint(0);

  auto r =
      run_command(agent_binary() + " --state-dir " + dir_.path().string() + " cert regenerate");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // No new connection is needed: the running agent notices the file within about a second.
  auto answer = c->receive(5000ms);
  ASSERT_TRUE(answer) << describe(answer.error());
  auto* d = std::get_if<wire::denied>(&*answer);
  ASSERT_NE(d, nullptr) << wire::to_string(wire::type_of(*answer));
  EXPECT_EQ(d->reason, wire::denial_reason::certificate_changed);
  EXPECT_TRUE(c->closed_without_message());
  EXPECT_NE(server_->current_thumbprint(0), old);
}

}  // namespace
}  // namespace certfleet::agent

namespace certfleet::agent {
namespace {

TEST_F(registration, a_reconnect_resumes_the_tls_session_until_the_certificate_changes) {
  auto cache = std::make_shared<tls_session_cache>(16);
  auto first = std::make_unique<test_client>(manager_, "127.0.0.1", port_, cache);
  ASSERT_FALSE(first->connect());
  EXPECT_FALSE(first->session().handshake()->resumed);
  first.reset();
  test_client second(manager_, "127.0.0.1", port_, cache);
  ASSERT_FALSE(second.connect());
  EXPECT_TRUE(second.session().handshake()->resumed);

  // A new certificate comes with a new ticket key: the old session cannot hide the change.
  auto old = server_->current_thumbprint(0);
  ASSERT_FALSE(server_->apply_fault(0, {fault_kind::regenerate, 0}));
  EXPECT_NE(server_->current_thumbprint(0), old);
  test_client third(manager_, "127.0.0.1", port_, cache);
  ASSERT_FALSE(third.connect());
  EXPECT_FALSE(third.session().handshake()->resumed);
  EXPECT_EQ(*third.server_thumbprint(), server_->current_thumbprint(0));
}

}  // namespace
}  // namespace certfleet::agent
