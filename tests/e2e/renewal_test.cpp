// The renewal prompt end to end: a real certfleetd whose clock is moved with faketime (libfaketime)
// past the manager certificate's renewal instant, read back through the real certfleet CLI. The
// same for a real agent's certificate (one year of validity): past the start of its warning window
// it raises `server_certificate_expiring` once, and past its notAfter it is refused with the
// reason.
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/fleet.hpp"
#include "tests/support/manager.hpp"

namespace certfleet::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

class renewal_prompt : public ::testing::Test {
 protected:
  temp_dir dir{"certfleet-renewal"};
  std::unique_ptr<child> daemon;

  void SetUp() override {
    // Ten days of validity and a nine-day window: the prompt is due one day from now.
    std::ofstream{dir / "certfleet.toml"} << "state_dir = \"" << (dir / "mgr").string() << "\"\n"
                                          << "[identity]\nvalidity_days = 10\n"
                                          << "renewal_warning_days = 9\n";
    auto r = cli({"init"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  run_result cli(std::vector<std::string> args) {
    std::vector<std::string> argv{binary("apps/certfleet"), "--config",
                                  (dir / "certfleet.toml").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }

  // Starts certfleetd with its clock `offset` ahead ("+2d"; "" for the real clock; faketime_env).
  void start(const std::string& offset) {
    auto env = offset.empty() ? std::map<std::string, std::string>{} : faketime_env(offset);
    daemon = std::make_unique<child>(
        std::vector<std::string>{binary("apps/daemon/certfleetd"), "--config",
                                 (dir / "certfleet.toml").string()},
        dir / "daemon.log", env);
    ASSERT_TRUE(wait_until([&] { return cli({"status"}).exit_code == 0; }, 30s)) << daemon->log();
  }

  void stop() {
    daemon->stop(SIGTERM);
    daemon.reset();
  }

  std::vector<json> prompts() {
    auto r = cli({"--json", "events", "--since", "0", "--type", "certificate_renewal_due"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<json> out;
    std::istringstream lines{r.out};
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) out.push_back(json::parse(line));
    return out;
  }

  json status() { return json::parse(cli({"--json", "status"}).out); }
};

TEST_F(renewal_prompt, is_not_due_before_the_window) {
  start("");
  EXPECT_FALSE(status()["manager_renewal_due"].get<bool>());
  EXPECT_EQ(status()["manager_days_left"], 9) << "ten days of validity, a few seconds used";
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(prompts().empty());
}

TEST_F(renewal_prompt, fires_once_in_the_window_survives_restarts_and_repeats_after_the_interval) {
  start("+2d");
  ASSERT_TRUE(wait_until([&] { return prompts().size() == 1; }, 20s)) << daemon->log();
  auto first = prompts().front();
  EXPECT_EQ(first["details"]["days_left"], 7);
  EXPECT_EQ(first["details"]["reminder"], false);
  EXPECT_EQ(first["details"]["expired"], false);
  EXPECT_EQ(first["details"]["thumbprint"], status()["manager_thumbprint"]);
  EXPECT_TRUE(status()["manager_renewal_due"].get<bool>());
  EXPECT_NE(cli({"status"}).out.find("renewal due: run 'certfleet cert renew'"), std::string::npos);
  EXPECT_NE(daemon->log().find("renew it with certfleet cert renew"), std::string::npos);
  stop();

  // A restart the same day does not repeat it (the last prompt is stored with the event).
  start("+2d");
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(prompts().size(), 1u);
  stop();

  // A day later (the default reminder interval) it comes again, as a reminder.
  start("+3d");
  ASSERT_TRUE(wait_until([&] { return prompts().size() == 2; }, 20s)) << daemon->log();
  EXPECT_EQ(prompts().back()["details"]["reminder"], true);
  EXPECT_EQ(prompts().back()["details"]["days_left"], 6);
  stop();

  // The clock set back does not fire it again.
  start("+36h");
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(prompts().size(), 2u);
}

TEST_F(renewal_prompt, cert_show_prints_the_days_left_and_whether_renewal_is_due) {
  auto j = json::parse(cli({"--json", "cert", "show"}).out);
  EXPECT_EQ(j["days_left"], 9);
  EXPECT_EQ(j["renewal_due"], false);
  EXPECT_EQ(j["expired"], false);
  EXPECT_NE(cli({"cert", "show"}).out.find("Renewal due:        no"), std::string::npos);
  // Two days later (the CLI's clock moved with libfaketime) it is due.
  std::vector<std::string> argv{binary("apps/certfleet"),
                                "--config",
                                (dir / "certfleet.toml").string(),
                                "--json",
                                "cert",
                                "show"};
  auto env = faketime_env("+2d");
  env.erase("FAKETIME_DONT_FAKE_MONOTONIC");
  auto later = run(argv, "", env);
  ASSERT_EQ(later.exit_code, 0) << later.err;
  j = json::parse(later.out);
  EXPECT_EQ(j["days_left"], 7);
  EXPECT_EQ(j["renewal_due"], true);
}

/// One real agent endpoint, registered and trusted with the daemon on the real clock; then the
/// daemon restarted with its clock moved ahead while the agent keeps the real one.
class server_certificate_expiry : public renewal_prompt {
 protected:
  std::unique_ptr<agent_fleet> fleet;
  std::string id;

  void SetUp() override {
    // A manager certificate that outlives the agent's (one year), and fast reconnects.
    std::ofstream{dir / "certfleet.toml"}
        << "state_dir = \"" << (dir / "mgr").string() << "\"\n"
        << "[identity]\nvalidity_days = 3650\n"
        << "[daemon]\nconnect_timeout_ms = 1000\nhandshake_timeout_ms = 2000\n"
        << "backoff_initial_ms = 100\nbackoff_max_ms = 500\ncollect_interval_s = 1\n";
    ASSERT_EQ(cli({"init"}).exit_code, 0);
    fleet = std::make_unique<agent_fleet>(dir.path(), 1, "fleet-secret-Zq81");
    start("");
    const auto& e = fleet->endpoints().at(0);
    auto r = cli({"--json", "server", "add", e.host_port(), "--account", "admin",
                  "--password-stdin", "--expect-thumbprint", e.thumbprint},
                 "fleet-secret-Zq81\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    id = json::parse(r.out)["id"];
    ASSERT_TRUE(wait_until([&] { return show()["last_collection_ms"].get<int64_t>() > 0; }, 30s))
        << daemon->log();
  }

  run_result cli(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv{binary("apps/certfleet"), "--config",
                                  (dir / "certfleet.toml").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, input);
  }

  json show() { return json::parse(cli({"--json", "server", "show", id}).out); }

  std::vector<json> warnings() {
    auto r = cli({"--json", "events", "--since", "0", "--type", "server_certificate_expiring"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<json> out;
    std::istringstream lines{r.out};
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) out.push_back(json::parse(line));
    return out;
  }
};

TEST_F(server_certificate_expiry, the_dates_are_recorded_and_shown_and_nothing_is_due_yet) {
  auto v = show();
  EXPECT_EQ(v["certificate_days_left"], 364) << v.dump(2);
  EXPECT_GT(v["certificate_not_after_ms"].get<int64_t>(), v["certificate_not_before_ms"]);
  EXPECT_EQ(v["certificate_expiry_warned"], false);
  EXPECT_NE(cli({"server", "show", id}).out.find("(364 days left)"), std::string::npos);
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(warnings().empty());
}

TEST_F(server_certificate_expiry,
       inside_the_window_one_event_survives_restarts_and_past_it_refused) {
  stop();
  start("+340d");
  ASSERT_TRUE(wait_until([&] { return warnings().size() == 1; }, 20s)) << daemon->log();
  auto w = warnings().front();
  EXPECT_EQ(w["server_id"], id);
  EXPECT_EQ(w["details"]["thumbprint"], fleet->endpoints().at(0).thumbprint);
  EXPECT_EQ(w["details"]["days_left"], 24);
  EXPECT_EQ(w["details"]["expired"], false);
  EXPECT_TRUE(show()["certificate_expiry_warned"].get<bool>());
  EXPECT_NE(daemon->log().find("expires at"), std::string::npos);
  EXPECT_TRUE(wait_until([&] { return show()["connected"].get<bool>(); }, 10s))
      << "inside the window it is still used";
  stop();

  // Not repeated at the next start, nor on the following ticks.
  start("+341d");
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(warnings().size(), 1u);
  stop();

  // Past notAfter (and the clock skew tolerance) the handshake refuses it, with the reason.
  start("+366d");
  ASSERT_TRUE(wait_until(
      [&] {
        return show()["last_error"].get<std::string>().find("expired at") != std::string::npos;
      },
      20s))
      << daemon->log();
  auto v = show();
  EXPECT_EQ(v["state"], "trusted");
  EXPECT_FALSE(v["connected"].get<bool>());
  EXPECT_NE(v["last_error"].get<std::string>().find("daemon.clock_skew_tolerance_s"),
            std::string::npos);
  EXPECT_NE(cli({"server", "show", id}).out.find("expired"), std::string::npos);
}

}  // namespace
}  // namespace certfleet::test
