// `certfleet cert generate` never cuts a fleet off: while servers trust the current manager
// certificate it is refused (exit 8) with a message naming `certfleet cert renew`, and nothing
// changes; whether the daemon runs (it is asked) or not (the database is read).
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "storage/state_store.hpp"
#include "tests/support/dead_port.hpp"
#include "tests/support/process.hpp"

namespace certfleet::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

class cert_generate : public ::testing::Test {
 protected:
  temp_dir dir{"certfleet-cert-generate"};
  dead_port unreachable;

  std::string state() const { return (dir / "mgr").string(); }

  run_result cli(std::vector<std::string> args) {
    args.insert(args.begin(), {binary("apps/certfleet"), "-s", state()});
    return run(args);
  }

  std::string current_thumbprint() {
    auto r = cli({"cert", "show", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out)["sha256"].get<std::string>();
  }

  void SetUp() override { ASSERT_EQ(cli({"init"}).exit_code, 0); }

  /// Stores one server that pinned this manager, as a registration and a validation would.
  void add_trusted_server() {
    auto db = state_store::open(std::filesystem::path(state()) / "db");
    ASSERT_TRUE(db) << describe(db.error());
    server_record r;
    r.id = "s-00000001";
    r.name = "backup01";
    r.host = "127.0.0.1";
    r.port = unreachable.port();
    r.state = server_state::trusted;
    r.account = "admin";
    auto t = thumbprint::parse(std::string(64, 'A'));
    ASSERT_TRUE(t);
    r.presented = *t;
    r.pinned = *t;
    r.validated_by = "admin";
    ASSERT_TRUE((*db)->put_servers({r}, {}));
  }

  void expect_refused_and_unchanged() {
    auto before = current_thumbprint();
    auto r = cli({"cert", "generate", "--friendly-name", "manager 2027"});
    EXPECT_EQ(r.exit_code, 8) << r.err;
    EXPECT_NE(r.err.find("certfleet cert renew"), std::string::npos) << r.err;
    EXPECT_EQ(current_thumbprint(), before);
    auto previous = cli({"cert", "show", "--previous"});
    EXPECT_EQ(previous.exit_code, 3) << "no identity was replaced";
  }
};

TEST_F(cert_generate, without_trusted_servers_a_new_identity_becomes_current) {
  auto before = current_thumbprint();
  auto r = cli({"cert", "generate", "--friendly-name", "manager 2027"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(current_thumbprint(), before);
  auto previous = cli({"cert", "show", "--previous", "--json"});
  ASSERT_EQ(previous.exit_code, 0) << previous.err;
  EXPECT_EQ(json::parse(previous.out)["sha256"], before);
}

TEST_F(cert_generate, is_refused_while_a_server_trusts_the_manager_and_no_daemon_runs) {
  add_trusted_server();
  expect_refused_and_unchanged();
}

TEST_F(cert_generate, is_refused_while_a_server_trusts_the_manager_and_the_daemon_runs) {
  add_trusted_server();
  child daemon({binary("apps/daemon/certfleetd"), "-s", state()}, dir / "daemon.log");
  ASSERT_TRUE(wait_until([&] { return cli({"status"}).exit_code == 0; }, 30s)) << daemon.log();
  expect_refused_and_unchanged();
  auto r = cli({"cert", "generate", "--friendly-name", "x", "--json"});
  EXPECT_EQ(r.exit_code, 8);
  EXPECT_EQ(json::parse(r.err)["code"], "invalid_state");
}

}  // namespace
}  // namespace certfleet::test
