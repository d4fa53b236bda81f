// End to end: the manager's TLS sessions survive an orderly daemon restart, so a fleet
// that kept running reconnects by resumption; a damaged session file costs only full handshakes.
// Real processes: a certfleet-agent fleet, certfleetd and the certfleet CLI over 127.0.0.1.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/fleet.hpp"
#include "tests/support/manager.hpp"

namespace certfleet::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* fleet_password = "fleet-secret-Rk27";
constexpr size_t fleet_size = 8;

class session_restart : public ::testing::Test {
 protected:
  temp_dir dir{"certfleet-e2e-resume"};
  std::unique_ptr<agent_fleet> fleet;
  manager_daemon mgr{dir.path()};
  std::vector<std::pair<std::string, std::string>> endpoints;  // "address:port", thumbprint

  std::filesystem::path state() const { return mgr.state(); }
  std::filesystem::path sessions_file() const { return state() / "tls-sessions"; }

  void SetUp() override {
    fleet = std::make_unique<agent_fleet>(dir.path(), static_cast<int>(fleet_size), fleet_password);
    for (const auto& e : fleet->endpoints()) endpoints.emplace_back(e.host_port(), e.thumbprint);

    auto failed = mgr.init();
    ASSERT_EQ(failed, "");
  }

  void start_daemon() { ASSERT_TRUE(mgr.start()) << mgr.log(); }

  void stop_daemon() {
    auto status = mgr.stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << mgr.log();
  }

  run_result cli(std::vector<std::string> args, const std::string& input = "") {
    return mgr.cli(std::move(args), input);
  }

  json status() {
    auto r = cli({"--json", "status"});
    return r.exit_code == 0 ? json::parse(r.out) : json{};
  }

  bool whole_fleet_connected() {
    return wait_until([&] { return status().value("connected", size_t{0}) == fleet_size; }, 60s);
  }

  // Adds every endpoint with its expected thumbprint and waits until all are trusted and connected.
  void enrol_fleet() {
    for (auto& [address, thumb] : endpoints) {
      auto r = cli({"server", "add", address, "--account", "admin", "--password-stdin",
                    "--expect-thumbprint", thumb},
                   std::string{fleet_password} + "\n");
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    ASSERT_TRUE(whole_fleet_connected()) << status().dump(2);
  }

  std::string daemon_log() const {
    std::ifstream in{dir / "daemon.log"};
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
};

TEST_F(session_restart, after_an_orderly_restart_the_fleet_reconnects_by_resumption) {
  start_daemon();
  enrol_fleet();
  stop_daemon();
  ASSERT_TRUE(std::filesystem::exists(sessions_file()));
  struct stat st {};
  ASSERT_EQ(::stat(sessions_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_TRUE(files_containing(state(), fleet_password).empty());

  start_daemon();
  ASSERT_TRUE(whole_fleet_connected())
      << status().dump(2) << daemon_log() << fleet->process().log();
  auto s = status();
  EXPECT_GE(s["resumed_handshakes"].get<uint64_t>(), fleet_size) << s.dump(2);
  EXPECT_EQ(s["resumed_handshakes"], s["handshakes"]) << "every reconnect resumed: " << s.dump(2);
  EXPECT_NE(daemon_log().find(std::to_string(fleet_size) + " TLS sessions restored"),
            std::string::npos)
      << daemon_log();
}

TEST_F(session_restart, a_damaged_session_file_is_reported_and_costs_only_full_handshakes) {
  start_daemon();
  enrol_fleet();
  stop_daemon();
  ASSERT_TRUE(std::filesystem::exists(sessions_file()));
  std::filesystem::resize_file(sessions_file(), std::filesystem::file_size(sessions_file()) / 2);

  start_daemon();
  ASSERT_TRUE(whole_fleet_connected())
      << status().dump(2) << daemon_log() << fleet->process().log();
  auto s = status();
  EXPECT_EQ(s["resumed_handshakes"].get<uint64_t>(), 0u) << s.dump(2);
  auto log = daemon_log();
  EXPECT_NE(log.find("TLS session file " + sessions_file().string()), std::string::npos) << log;
  EXPECT_NE(log.find("truncated"), std::string::npos) << log;
}

}  // namespace
}  // namespace certfleet::test
