// The renewal prompt end to end: a real certfleetd whose clock is moved with faketime (libfaketime)
// past the manager certificate's renewal instant, read back through the real certfleet CLI.
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"

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

  // Starts certfleetd with its clock `offset` ahead ("+2d"; "" for the real clock). libfaketime is
  // preloaded into the daemon itself (not through the faketime wrapper, which would not pass on
  // the SIGTERM that stops it).
  void start(const std::string& offset) {
    std::map<std::string, std::string> env;
    if (!offset.empty()) {
      env["LD_PRELOAD"] = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
      env["FAKETIME"] = offset;
      env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1";
      // In the sanitizer build AddressSanitizer must come first among the loaded libraries;
      // libfaketime only wraps time functions, so the order check is waived for it.
      const char* asan = std::getenv("ASAN_OPTIONS");
      env["ASAN_OPTIONS"] =
          std::string{asan ? asan : ""} + (asan && *asan ? ":" : "") + "verify_asan_link_order=0";
    }
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

}  // namespace
}  // namespace certfleet::test
