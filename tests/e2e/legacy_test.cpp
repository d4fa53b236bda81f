// Legacy credential servers end to end: a real certfleet-agent endpoint speaking the legacy
// protocol (version 1, `fleet --legacy-endpoints`), a real certfleetd and the certfleet CLI. The
// manager detects it through the hello version negotiation, keeps its credentials sealed (even past
// daemon.credential_max_age_s) and logs in with them on every session; once the agent is upgraded
// (restarted without the option) the next connection registers it with certificates and deletes
// the credentials.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/manager.hpp"

namespace certfleet::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* fleet_password = "fleet-secret-Zq81";

class legacy_server : public ::testing::Test {
 protected:
  temp_dir dir{"certfleet-legacy"};
  uint16_t port = free_port();
  std::unique_ptr<child> fleet;
  manager_daemon mgr{dir.path()};
  std::string thumbprint;

  std::filesystem::path fleet_dir() const { return dir / "fleet"; }

  void SetUp() override {
    std::ofstream{dir / "admin.pw"} << fleet_password << '\n';
    std::filesystem::permissions(
        dir / "admin.pw", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    // Credentials of servers that never register expire after 2 s: not those of legacy servers.
    auto failed =
        mgr.init("backoff_max_ms = 300\ncollect_interval_s = 1\ncredential_max_age_s = 2\n");
    ASSERT_EQ(failed, "");
  }

  void start_fleet(bool legacy) {
    std::vector<std::string> argv{binary("apps/agent/certfleet-agent"),
                                  "--state-dir",
                                  fleet_dir().string(),
                                  "fleet",
                                  "--count",
                                  "1",
                                  "--base-port",
                                  std::to_string(port),
                                  "--admin-password-file",
                                  (dir / "admin.pw").string()};
    if (legacy) argv.insert(argv.end(), {"--legacy-endpoints", "1"});
    std::filesystem::remove(fleet_dir() / "manifest.json");
    fleet = std::make_unique<child>(argv, dir / "fleet.log");
    ASSERT_TRUE(
        wait_until([&] { return std::filesystem::exists(fleet_dir() / "manifest.json"); }, 60s))
        << fleet->log();
    std::ifstream in{fleet_dir() / "manifest.json"};
    thumbprint = json::parse(in)["endpoints"][0]["thumbprint"];
  }

  void start_daemon() { ASSERT_TRUE(mgr.start()) << mgr.log(); }

  run_result cli(std::vector<std::string> args, const std::string& input = "") {
    return mgr.cli(std::move(args), input);
  }

  json show(const std::string& id) {
    return json::parse(cli({"--json", "server", "show", id}).out);
  }

  std::vector<std::string> event_types(const std::string& id) {
    auto r = cli({"--json", "events", "--since", "0", "--server", id});
    std::vector<std::string> out;
    std::istringstream lines{r.out};
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) out.push_back(json::parse(line)["type"]);
    return out;
  }
};

TEST_F(legacy_server, is_collected_with_sealed_credentials_kept_then_registered_once_upgraded) {
  start_fleet(true);
  start_daemon();
  auto r = cli({"--json", "server", "add", "127.0.0.1:" + std::to_string(port), "--account",
                "admin", "--password-stdin", "--expect-thumbprint", thumbprint},
               std::string{fleet_password} + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto id = json::parse(r.out)["id"].get<std::string>();

  ASSERT_TRUE(wait_until([&] { return show(id)["last_collection_ms"].get<int64_t>() > 0; }, 20s))
      << show(id).dump(2) << mgr.log();
  auto v = show(id);
  EXPECT_EQ(v["state"], "trusted");
  EXPECT_EQ(v["auth"], "credentials (legacy)");
  EXPECT_EQ(v["pinned_thumbprint"], thumbprint);
  EXPECT_TRUE(v["credentials_retained"].get<bool>());
  auto list = cli({"server", "list"});
  EXPECT_NE(list.out.find("credentials (legacy)"), std::string::npos) << list.out;
  EXPECT_NE(cli({"server", "show", id}).out.find("credentials (legacy)"), std::string::npos);

  // Past credential_max_age_s and through a daemon restart: still kept, still collected.
  mgr.stop();
  std::this_thread::sleep_for(2500ms);
  start_daemon();
  auto collected = show(id)["last_collection_ms"].get<int64_t>();
  ASSERT_TRUE(
      wait_until([&] { return show(id)["last_collection_ms"].get<int64_t>() > collected; }, 20s))
      << show(id).dump(2) << mgr.log();
  EXPECT_TRUE(show(id)["credentials_retained"].get<bool>());
  auto types = event_types(id);
  EXPECT_EQ(std::count(types.begin(), types.end(), "credentials_deleted"), 0);

  // The agent is upgraded: the same endpoint, restarted without the legacy option.
  fleet->stop(SIGTERM);
  start_fleet(false);
  ASSERT_TRUE(wait_until([&] { return show(id)["auth"] == "certificates"; }, 20s))
      << show(id).dump(2) << mgr.log();
  ASSERT_TRUE(wait_until([&] { return !show(id)["credentials_retained"].get<bool>(); }, 20s))
      << show(id).dump(2);
  collected = show(id)["last_collection_ms"].get<int64_t>();
  ASSERT_TRUE(
      wait_until([&] { return show(id)["last_collection_ms"].get<int64_t>() > collected; }, 20s))
      << show(id).dump(2) << mgr.log();
  v = show(id);
  EXPECT_EQ(v["state"], "trusted");
  EXPECT_EQ(v["pinned_thumbprint"], thumbprint);
  types = event_types(id);
  EXPECT_EQ(std::count(types.begin(), types.end(), "registered"), 2)
      << "the legacy login, then the certificate registration";
  EXPECT_EQ(std::count(types.begin(), types.end(), "credentials_deleted"), 1);
  // The upgraded agent stored this manager's certificate: it registered.
  fleet->stop(SIGTERM);
  auto managers = run({binary("apps/agent/certfleet-agent"), "--state-dir", fleet_dir().string(),
                       "managers", "list"});
  EXPECT_NE(
      managers.out.find(
          json::parse(cli({"--json", "status"}).out)["manager_thumbprint"].get<std::string>()),
      std::string::npos)
      << managers.out << managers.err;
}

}  // namespace
}  // namespace certfleet::test
