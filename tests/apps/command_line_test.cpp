// certfleet, certfleetd and certfleet-agent share their command-line conventions: global flags
// before or after the command, --version, named unknown flags, JSON errors with --json, and exit 3
// for a state directory that was never initialised.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"

namespace certfleet::test {
namespace {

using json = nlohmann::json;

const std::string certfleet_bin = binary("apps/certfleet");
const std::string daemon_bin = binary("apps/daemon/certfleetd");
const std::string agent_bin = binary("apps/agent/certfleet-agent");

run_result certfleet(std::vector<std::string> args) {
  args.insert(args.begin(), certfleet_bin);
  return run(args);
}

TEST(command_line, every_program_prints_the_project_version) {
  for (const auto& [bin, name] : {std::pair{certfleet_bin, "certfleet"},
                                  {daemon_bin, "certfleetd"},
                                  {agent_bin, "certfleet-agent"}}) {
    auto r = run({bin, "--version"});
    EXPECT_EQ(r.exit_code, 0) << bin << r.err;
    EXPECT_EQ(r.out, std::string(name) + " " + CERTFLEET_VERSION + "\n");
  }
}

TEST(command_line, global_flags_are_accepted_before_and_after_the_command) {
  temp_dir dir{"certfleet-cli"};
  auto state = (dir / "mgr").string();
  ASSERT_EQ(certfleet({"init", "--state-dir", state}).exit_code, 0);
  auto before = certfleet({"--json", "--state-dir", state, "cert", "show"});
  auto after = certfleet({"cert", "show", "--json", "-s", state});
  auto middle = certfleet({"-s", state, "cert", "--json", "show"});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  ASSERT_EQ(after.exit_code, 0) << after.err;
  ASSERT_EQ(middle.exit_code, 0) << middle.err;
  EXPECT_EQ(before.out, after.out);
  EXPECT_EQ(before.out, middle.out);
  EXPECT_EQ(json::parse(after.out)["subject"], "CN=certfleet-manager, O=certfleet");
}

TEST(command_line, an_unknown_flag_is_named_with_exit_2) {
  for (const auto& bin : {certfleet_bin, daemon_bin, agent_bin}) {
    auto r = run({bin, "--bogus"});
    EXPECT_EQ(r.exit_code, 2) << bin;
    EXPECT_NE(r.err.find("--bogus"), std::string::npos) << bin << ": " << r.err;
  }
  auto r = certfleet({"server", "list", "--bogus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--bogus"), std::string::npos) << r.err;
}

TEST(command_line, an_empty_expected_thumbprint_is_a_usage_error_not_a_dropped_pin) {
  for (const char* empty : {"", "  "}) {
    auto r = certfleet({"server", "add", "127.0.0.1:9401", "--account", "admin", "--password-stdin",
                        "--expect-thumbprint", empty});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--expect-thumbprint"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("is empty"), std::string::npos) << r.err;
  }
}

TEST(command_line, a_missing_command_names_the_choices) {
  auto r = certfleet({"cert"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("generate, show, export"), std::string::npos) << r.err;
}

TEST(command_line, with_json_errors_are_one_json_object_on_stderr) {
  auto r = certfleet({"--bogus", "--json"});
  EXPECT_EQ(r.exit_code, 2);
  auto e = json::parse(r.err);
  EXPECT_EQ(e["exit_code"], 2);
  EXPECT_EQ(e["code"], "invalid_argument");
  EXPECT_NE(e["message"].get<std::string>().find("--bogus"), std::string::npos);

  temp_dir dir{"certfleet-cli"};
  auto missing = certfleet({"status", "--json", "-s", (dir / "none").string()});
  EXPECT_EQ(missing.exit_code, 3);
  auto m = json::parse(missing.err);
  EXPECT_EQ(m["exit_code"], 3);
  EXPECT_EQ(m["code"], "not_found");
}

TEST(command_line, an_uninitialised_state_directory_is_exit_3_everywhere) {
  temp_dir dir{"certfleet-cli"};
  auto none = (dir / "none").string();
  for (auto args : std::vector<std::vector<std::string>>{
           {certfleet_bin, "-s", none, "status"},
           {certfleet_bin, "-s", none, "server", "list"},
           {certfleet_bin, "-s", none, "events"},
           {certfleet_bin, "-s", none, "cert", "show"},
           {daemon_bin, "-s", none},
           {agent_bin, "-s", none, "cert", "show"},
           {agent_bin, "managers", "list", "-s", none},
       }) {
    auto r = run(args);
    EXPECT_EQ(r.exit_code, 3) << args[1] << " " << args.back() << ": " << r.err;
    EXPECT_NE(r.err.find("init"), std::string::npos) << r.err;
  }
}

TEST(command_line, the_agent_takes_json_anywhere) {
  temp_dir dir{"certfleet-cli"};
  auto r = run({agent_bin, "--json", "-s", (dir / "none").string(), "cert", "show"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(json::parse(r.err)["exit_code"], 3);
  EXPECT_EQ(run({agent_bin, "cert", "show", "--json", "--parse-only"}).exit_code, 0);
  EXPECT_EQ(run({agent_bin, "--json", "managers", "list", "--parse-only"}).exit_code, 0);
}

TEST(command_line, help_exits_0_on_every_program) {
  for (const auto& bin : {certfleet_bin, daemon_bin, agent_bin}) {
    auto r = run({bin, "--help"});
    EXPECT_EQ(r.exit_code, 0) << bin;
    EXPECT_NE(r.out.find("--state-dir"), std::string::npos) << bin;
  }
}

}  // namespace
}  // namespace certfleet::test
