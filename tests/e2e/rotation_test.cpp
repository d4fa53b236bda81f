// The manager certificate rotation end to end (docs/lifecycle.md, "Rotating the manager
// certificate"): real processes (a certfleet-agent fleet, certfleetd, the certfleet CLI) over
// 127.0.0.1. `cert renew` moves the connected servers at once and the offline ones when they come
// back, without credentials; the old key is destroyed and the agents keep only the new
// certificate; a daemon killed in the middle resumes; a restart after a renewal, with the session
// file gone, keeps every server connected.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
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

class rotation : public ::testing::Test {
 protected:
  temp_dir dir{"certfleet-e2e-rotation"};
  std::unique_ptr<agent_fleet> fleet;
  manager_daemon mgr{dir.path()};
  size_t fleet_size = 0;

  std::filesystem::path state() const { return mgr.state(); }
  std::filesystem::path fleet_dir() const { return dir / "fleet"; }

  /// `extra_tables`: TOML tables for the manager's config beside [daemon] (manager_daemon::init).
  void start_fleet(size_t n, const std::string& extra_tables = "") {
    fleet_size = n;
    fleet = std::make_unique<agent_fleet>(dir.path(), static_cast<int>(n), fleet_password);
    auto failed = mgr.init("collect_interval_s = 1\n", extra_tables);
    ASSERT_EQ(failed, "");
  }

  /// `clock`: the daemon's clock offset for faketime ("+11d"); empty for the real clock.
  void start_daemon(const std::string& failpoints = "", const std::string& clock = "") {
    ASSERT_TRUE(mgr.start(
        failpoints, clock.empty() ? std::map<std::string, std::string>{} : faketime_env(clock)))
        << mgr.log();
  }

  void stop_daemon() {
    auto status = mgr.stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << mgr.log();
  }

  run_result cli(std::vector<std::string> args, const std::string& input = "") {
    return mgr.cli(std::move(args), input);
  }

  json cli_json(std::vector<std::string> args) { return mgr.cli_json(std::move(args)); }

  json status() { return cli_json({"status"}); }
  json rotation_status() { return cli_json({"cert", "status"}); }

  size_t connected() { return status().value("connected", size_t{0}); }

  int fault(int endpoint, const std::string& kind) {
    return run({binary("apps/agent/certfleet-agent"), "--state-dir", fleet_dir().string(), "fault",
                "--endpoint", std::to_string(endpoint), kind})
        .exit_code;
  }

  void enrol_fleet() {
    for (const auto& e : fleet->endpoints()) {
      auto r = cli({"server", "add", e.host_port(), "--account", "admin", "--password-stdin",
                    "--expect-thumbprint", e.thumbprint},
                   std::string{fleet_password} + "\n");
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    ASSERT_TRUE(wait_until([&] { return connected() == fleet_size; }, 60s)) << status().dump(2);
  }

  size_t count_events(const std::string& type) {
    auto r = cli({"--json", "events", "--type", type});
    size_t n = 0;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) n += line.find(type) != std::string::npos;
    return n;
  }

  std::string manager_thumbprint() {
    auto r = cli_json({"cert", "show"});
    return r.value("sha256", std::string{});
  }

  /// Contents of every private key file in the certificate store now.
  std::vector<std::string> key_files() {
    std::vector<std::string> keys;
    for (const auto& e : std::filesystem::directory_iterator(state() / "certs"))
      if (e.path().extension() == ".key") {
        std::ifstream in(e.path());
        keys.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      }
    return keys;
  }

  /// The managers an endpoint's agent has registered (read from its store after the fleet
  /// stopped).
  std::vector<std::string> agent_managers(size_t endpoint) {
    auto r = run({binary("apps/agent/certfleet-agent"), "--state-dir", fleet_dir().string(),
                  "--json", "managers", "--endpoint", std::to_string(endpoint), "list"});
    std::vector<std::string> out;
    if (r.exit_code != 0) return {"error: " + r.err};
    for (const auto& m : json::parse(r.out)) out.push_back(m["thumbprint"]);
    return out;
  }
};

TEST_F(rotation, renew_moves_online_servers_at_once_and_offline_ones_when_they_return) {
  start_fleet(20);
  start_daemon();
  enrol_fleet();
  auto old_thumbprint = manager_thumbprint();
  auto old_keys = key_files();
  ASSERT_EQ(old_keys.size(), 1u);
  for (int i = 15; i < 20; ++i) ASSERT_EQ(fault(i, "offline"), 0);
  ASSERT_TRUE(wait_until([&] { return connected() == 15; }, 30s)) << status().dump(2);
  auto collections_before = status()["collections"].get<uint64_t>();

  auto renew = cli_json({"cert", "renew"});
  ASSERT_EQ(renew.value("servers", 0), 20) << renew.dump(2) << mgr.log();
  auto new_thumbprint = renew["new_thumbprint"].get<std::string>();
  EXPECT_EQ(renew["old_thumbprint"], old_thumbprint);
  EXPECT_EQ(manager_thumbprint(), new_thumbprint);

  // The 15 connected servers move at once; the 5 offline ones stay pending.
  ASSERT_TRUE(wait_until([&] { return rotation_status().value("moved", 0) == 15; }, 30s))
      << rotation_status().dump(2) << mgr.log();
  auto progress = rotation_status();
  EXPECT_EQ(progress["phase"], "rolling_out");
  EXPECT_EQ(progress["pending"].size(), 5u);
  EXPECT_EQ(key_files().size(), 2u) << "the old key is kept while servers still need it";
  auto text = cli({"cert", "status"});
  EXPECT_NE(text.out.find("15 of 20"), std::string::npos) << text.out;
  // Collection never stopped for the online ones.
  ASSERT_TRUE(wait_until(
      [&] { return status()["collections"].get<uint64_t>() >= collections_before + 30; }, 30s));
  EXPECT_EQ(connected(), 15u);

  for (int i = 15; i < 20; ++i) ASSERT_EQ(fault(i, "online"), 0);
  ASSERT_TRUE(wait_until([&] { return rotation_status().value("phase", "") == "completed"; }, 60s))
      << rotation_status().dump(2) << mgr.log();
  ASSERT_TRUE(wait_until([&] { return rotation_status().value("drops_owed", 1) == 0; }, 60s))
      << rotation_status().dump(2);
  ASSERT_TRUE(wait_until([&] { return connected() == 20; }, 60s)) << status().dump(2);
  EXPECT_EQ(count_events("rotation_started"), 1u);
  EXPECT_EQ(count_events("server_rotated"), 20u);
  EXPECT_EQ(count_events("rotation_completed"), 1u);

  // The old identity is retired: one key left, and no byte of the old key's text anywhere.
  auto keys = key_files();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_NE(keys[0], old_keys[0]);
  EXPECT_FALSE(std::filesystem::exists(state() / "certs" / "previous"));
  auto old_key_body = old_keys[0].substr(40, 48);
  EXPECT_TRUE(files_containing(state(), old_key_body).empty());
  // No credential stored at any point, and none retained now.
  EXPECT_TRUE(files_containing(state(), fleet_password).empty());
  for (const auto& s : cli_json({"server", "list"})) {
    EXPECT_EQ(s["state"], "trusted") << s.dump();
    EXPECT_FALSE(s.value("credentials_retained", true)) << s.dump();
  }

  stop_daemon();
  fleet.reset();
  for (size_t i = 0; i < fleet_size; ++i)
    EXPECT_EQ(agent_managers(i), std::vector<std::string>{new_thumbprint}) << "endpoint " << i;
}

TEST_F(rotation, a_daemon_killed_mid_rotation_resumes_and_completes_it) {
  start_fleet(6);
  start_daemon();
  enrol_fleet();
  stop_daemon();
  // The test build dies right after the first batch of servers is recorded as moved, or once the
  // roll-out is recorded as over but before the old key is destroyed.
  for (const char* point : {"rotation.after_server_rotated", "rotation.before_key_retirement"}) {
    SCOPED_TRACE(point);
    start_daemon(std::string{point} + "=kill");
    ASSERT_TRUE(wait_until([&] { return connected() == fleet_size; }, 60s)) << status().dump(2);
    cli({"cert", "renew"});
    ASSERT_TRUE(wait_until([&] { return !mgr.process().running(); }, 30s)) << mgr.log();
    mgr.release();
    EXPECT_EQ(key_files().size(), 2u) << "killed before the old key was destroyed";

    start_daemon();
    ASSERT_TRUE(
        wait_until([&] { return rotation_status().value("phase", "") == "completed"; }, 60s))
        << rotation_status().dump(2) << mgr.log();
    ASSERT_TRUE(wait_until([&] { return rotation_status().value("drops_owed", 1) == 0; }, 60s));
    ASSERT_TRUE(wait_until([&] { return connected() == fleet_size; }, 60s)) << status().dump(2);
    EXPECT_EQ(rotation_status().value("moved", 0), static_cast<int>(fleet_size));
    EXPECT_EQ(key_files().size(), 1u);
    stop_daemon();
  }
  auto new_thumbprint = manager_thumbprint();
  fleet.reset();
  for (size_t i = 0; i < fleet_size; ++i)
    EXPECT_EQ(agent_managers(i), std::vector<std::string>{new_thumbprint}) << "endpoint " << i;
}

TEST_F(rotation,
       a_renewal_killed_before_the_new_identity_is_stored_is_abandoned_and_can_be_redone) {
  start_fleet(4);
  start_daemon();
  enrol_fleet();
  auto old_thumbprint = manager_thumbprint();
  stop_daemon();
  start_daemon("rotation.before_install=kill");
  cli({"cert", "renew"});
  ASSERT_TRUE(wait_until([&] { return !mgr.process().running(); }, 30s)) << mgr.log();
  mgr.release();

  start_daemon();
  EXPECT_EQ(rotation_status().value("phase", ""), "abandoned");
  EXPECT_EQ(manager_thumbprint(), old_thumbprint);
  ASSERT_TRUE(wait_until([&] { return connected() == fleet_size; }, 60s)) << status().dump(2);
  EXPECT_NE(mgr.log().find("stopped before its new identity"), std::string::npos);

  auto renew = cli_json({"cert", "renew"});
  ASSERT_EQ(renew.value("servers", 0), 4) << renew.dump(2);
  ASSERT_TRUE(wait_until([&] { return rotation_status().value("phase", "") == "completed"; }, 60s))
      << rotation_status().dump(2) << mgr.log();
  ASSERT_TRUE(wait_until([&] { return connected() == fleet_size; }, 60s)) << status().dump(2);
}

TEST_F(rotation, after_renew_and_a_restart_without_the_session_file_every_server_stays_connected) {
  start_fleet(8);
  start_daemon();
  enrol_fleet();
  auto renew = cli_json({"cert", "renew"});
  ASSERT_EQ(renew.value("servers", 0), 8);
  ASSERT_TRUE(wait_until([&] { return rotation_status().value("phase", "") == "completed"; }, 60s))
      << rotation_status().dump(2) << mgr.log();
  stop_daemon();
  std::filesystem::remove(state() / "tls-sessions");
  start_daemon();
  ASSERT_TRUE(wait_until([&] { return connected() == fleet_size; }, 60s))
      << status().dump(2) << mgr.log();
  auto s = status();
  EXPECT_EQ(s["resumed_handshakes"].get<uint64_t>(), 0u) << "full handshakes, new certificate";
  auto per_state = s["per_state"];
  EXPECT_EQ(per_state.value("trusted", 0), static_cast<int>(fleet_size)) << s.dump(2);
}

TEST_F(rotation,
       a_server_offline_until_the_old_certificate_expired_must_register_again_and_then_can) {
  // The first manager certificate is valid for 10 days; the renewal's (the config is changed
  // before it) for 10 years. The daemon then restarts with its clock 11 days ahead.
  start_fleet(2, "[identity]\nvalidity_days = 10\nrenewal_warning_days = 5\n");
  start_daemon();
  enrol_fleet();
  auto ids = cli_json({"server", "list"});
  ASSERT_EQ(ids.size(), 2u) << cli({"--json", "server", "list"}).out
                            << cli({"--json", "server", "list"}).err;
  std::string online_id, offline_id;
  for (const auto& s : ids)
    (s["address"] == fleet->endpoints()[1].host_port() ? offline_id : online_id) = s["id"];
  ASSERT_EQ(fault(1, "offline"), 0);
  ASSERT_TRUE(wait_until([&] { return connected() == 1; }, 30s)) << status().dump(2);
  stop_daemon();
  {
    std::ifstream in{mgr.config()};
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    text.replace(text.find("validity_days = 10"), 18, "validity_days = 3650");
    std::ofstream{mgr.config()} << text;
  }
  start_daemon();
  auto renew = cli_json({"cert", "renew"});
  ASSERT_EQ(renew.value("servers", 0), 2) << renew.dump(2);
  auto new_thumbprint = renew["new_thumbprint"].get<std::string>();
  ASSERT_TRUE(wait_until([&] { return rotation_status().value("moved", 0) == 1; }, 60s))
      << rotation_status().dump(2);
  stop_daemon();

  // Eleven days later the old certificate has expired: the server that never received the new
  // one cannot be reached with either, and the rotation is done without it.
  start_daemon("", "+11d");
  auto state_of = [&](const std::string& id) {
    return cli_json({"server", "show", id}).value("state", "");
  };
  ASSERT_TRUE(wait_until([&] { return state_of(offline_id) == "reregistration_required"; }, 60s))
      << cli_json({"server", "show", offline_id}).dump(2) << mgr.log();
  ASSERT_TRUE(wait_until([&] { return rotation_status().value("phase", "") == "completed"; }, 60s))
      << rotation_status().dump(2);
  EXPECT_EQ(count_events("reregistration_required"), 1u);
  EXPECT_EQ(state_of(online_id), "trusted");

  // Back online, it is not contacted until an admin gives credentials again; then it registers
  // the new certificate and is collected.
  ASSERT_EQ(fault(1, "online"), 0);
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(state_of(offline_id), "reregistration_required");
  EXPECT_EQ(connected(), 1u);
  auto again = cli({"server", "credentials", offline_id, "--account", "admin", "--password-stdin"},
                   std::string{fleet_password} + "\n");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  ASSERT_TRUE(wait_until([&] { return connected() == 2; }, 60s))
      << cli_json({"server", "show", offline_id}).dump(2) << mgr.log();
  EXPECT_EQ(state_of(offline_id), "trusted");
  EXPECT_FALSE(cli_json({"server", "show", offline_id}).value("credentials_retained", true));
  stop_daemon();
  fleet.reset();
  auto managers = agent_managers(1);
  EXPECT_NE(std::find(managers.begin(), managers.end(), new_thumbprint), managers.end());
}

}  // namespace
}  // namespace certfleet::test
