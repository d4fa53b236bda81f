// A real single agent (state dir with two accounts, RocksDB, epoll server) on 127.0.0.1 port 0, and
// the blocking test client's registration exchange with it: the fixture of the agent tests that
// talk to one endpoint.
#pragma once

#include <gtest/gtest.h>

#include <atomic>

#include "agent/server.hpp"
#include "agent/state.hpp"
#include "crypto/password_hash.hpp"
#include "tests/agent/test_support.hpp"

namespace certfleet::agent {

// Test code only: the agent tests all use the test support's names unqualified.
using namespace certfleet::testing;
using namespace std::chrono_literals;

class single_agent_test : public ::testing::Test {
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
};

}  // namespace certfleet::agent
