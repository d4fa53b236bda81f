// A server removed and added again at the same address, now with a new identity, inherits nothing
// of the old one: no pin, no TLS session to resume, no credentials, no events. Real processes: a
// certfleet-agent fleet, certfleetd and the certfleet CLI over 127.0.0.1.
#include <signal.h>

#include <fstream>
#include <sstream>
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

constexpr const char* fleet_password = "fleet-secret-Ra63";

class readd : public ::testing::Test {
 protected:
  temp_dir dir{"certfleet-e2e-readd"};
  manager_daemon mgr{dir.path()};
  std::unique_ptr<agent_fleet> fleet;

  json cli_json(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), "--json");
    auto r = mgr.cli(args, input);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.empty() ? json{} : json::parse(r.out);
  }

  json show(const std::string& id) { return cli_json({"server", "show", id}); }

  bool reaches(const std::string& id, const std::string& state) {
    return wait_until([&] { return show(id).value("state", "") == state; }, 20s);
  }

  std::vector<json> events() {
    auto r = mgr.cli({"--json", "events", "--since", "0"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<json> out;
    std::istringstream lines{r.out};
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) out.push_back(json::parse(line));
    return out;
  }

  int fault(const std::string& kind) {
    return run({binary("apps/agent/certfleet-agent"), "--state-dir", (dir / "fleet").string(),
                "fault", "--endpoint", "0", kind})
        .exit_code;
  }

  std::string thumbprint_in_manifest() {
    std::ifstream in{dir / "fleet" / "manifest.json"};
    return json::parse(in)["endpoints"][0]["thumbprint"].get<std::string>();
  }
};

TEST_F(readd, a_server_added_again_with_a_new_identity_inherits_nothing_of_the_old_one) {
  fleet = std::make_unique<agent_fleet>(dir.path(), 1, fleet_password);
  const auto address = fleet->endpoints()[0].host_port();
  const auto old_thumbprint = fleet->endpoints()[0].thumbprint;
  ASSERT_EQ(mgr.init("collect_interval_s = 1\n"), "");
  ASSERT_TRUE(mgr.start()) << mgr.log();

  auto old_id = cli_json({"server", "add", address, "--account", "admin", "--password-stdin",
                          "--expect-thumbprint", old_thumbprint},
                         std::string{fleet_password} + "\n")
                    .value("id", "");
  ASSERT_FALSE(old_id.empty());
  ASSERT_TRUE(reaches(old_id, "trusted")) << show(old_id).dump(2) << mgr.log();
  ASSERT_TRUE(
      wait_until([&] { return show(old_id).value("last_collection_ms", int64_t{0}) > 0; }, 20s));
  // A resumable session for this address is in the manager's cache: drop the connection once and
  // the reconnect resumes it.
  ASSERT_EQ(fault("offline"), 0);
  ASSERT_EQ(fault("online"), 0);
  ASSERT_TRUE(wait_until([&] { return mgr.status().value("resumed_handshakes", 0) >= 1; }, 20s))
      << mgr.status().dump(2);

  ASSERT_EQ(mgr.cli({"server", "remove", old_id}).exit_code, 0);
  const auto removed_at = events().back().value("seq", uint64_t{0});
  // Same address, new identity (and the old connection gone).
  ASSERT_EQ(fault("regenerate"), 0);
  ASSERT_EQ(fault("offline"), 0);
  ASSERT_EQ(fault("online"), 0);
  const auto new_thumbprint = thumbprint_in_manifest();
  ASSERT_NE(new_thumbprint, old_thumbprint);
  const auto resumed_before = mgr.status().value("resumed_handshakes", 0);

  // A wrong password: only old credentials could register it.
  auto new_id = cli_json({"server", "add", address, "--account", "admin", "--password-stdin"},
                         "not-the-password\n")
                    .value("id", "");
  ASSERT_FALSE(new_id.empty());
  EXPECT_NE(new_id, old_id);
  ASSERT_TRUE(reaches(new_id, "auth_failed")) << show(new_id).dump(2) << mgr.log();
  // Its first handshake was a full one: the session kept for the old identity at this address was
  // not resumed.
  EXPECT_EQ(mgr.status().value("resumed_handshakes", 0), resumed_before) << mgr.log();
  // The right one: registered, then waiting for a decision (the manual policy); the old pin does
  // not carry over, so neither trusted nor a certificate mismatch.
  ASSERT_EQ(mgr.cli({"server", "credentials", new_id, "--account", "admin", "--password-stdin"},
                    std::string{fleet_password} + "\n")
                .exit_code,
            0);
  ASSERT_TRUE(reaches(new_id, "awaiting_validation")) << show(new_id).dump(2) << mgr.log();
  auto v = show(new_id);
  EXPECT_TRUE(v["pinned_thumbprint"].is_null()) << v.dump(2);
  EXPECT_TRUE(v["expected_thumbprint"].is_null()) << v.dump(2);
  EXPECT_EQ(v["presented_thumbprint"], new_thumbprint) << v.dump(2);
  EXPECT_EQ(v.value("last_collection_ms", int64_t{1}), 0) << "nothing collected: " << v.dump(2);
  EXPECT_FALSE(v.value("credentials_retained", true)) << v.dump(2);

  // The old server's events all precede its removal; the new one's all follow and say nothing of
  // a validation.
  for (const auto& e : events()) {
    auto seq = e.value("seq", uint64_t{0});
    if (e["server_id"] == old_id) {
      EXPECT_LE(seq, removed_at) << e.dump();
    }
    if (e["server_id"] == new_id) {
      EXPECT_GT(seq, removed_at) << e.dump();
      EXPECT_NE(e["type"], "validated") << e.dump();
      EXPECT_NE(e["type"], "certificate_changed") << e.dump();
    }
  }
  auto gone = mgr.cli({"server", "show", old_id});
  EXPECT_NE(gone.exit_code, 0) << gone.out;
}

}  // namespace
}  // namespace certfleet::test
