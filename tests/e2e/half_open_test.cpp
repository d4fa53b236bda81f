// Half-open peers end to end: a real certfleetd collecting from a real certfleet-agent fleet
// endpoint, with daemon.peer_timeout_s = 3. The agent is stopped (SIGSTOP: its kernel still
// acknowledges every byte, nothing answers), or, as root, both run in a network namespace of the
// test's own where an nftables rule silently drops the endpoint's traffic. Either way the daemon
// must report the connection down within peer_timeout_s, keep the server trusted, and reconnect and
// collect once the agent runs (or its traffic flows) again.
//
// Each test prints how long detection took after the fault (docs/reliability.md, "Half-open
// peers"). Traffic never leaves loopback: in the namespace test, loopback of that namespace.
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"

namespace certfleet::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* fleet_password = "fleet-secret-Hq27";
constexpr int peer_timeout_s = 3;
// Scheduling, the CLI's own start-up and the 20 ms polling of the test, on a loaded machine.
constexpr auto detection_slack = 1500ms;

const char* const ip_tool = "/usr/sbin/ip";
const char* const nft_tool = "/usr/sbin/nft";

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// A network namespace of this test, with its loopback up; deleted (with every nftables rule in
/// it) when destroyed. The processes in it must be gone by then.
class network_namespace {
 public:
  network_namespace() : name_("certfleet-halfopen-" + std::to_string(::getpid())) {
    run({ip_tool, "netns", "del", name_});  // a leftover of a killed earlier run
    auto r = run({ip_tool, "netns", "add", name_});
    if (r.exit_code != 0) {
      error_ = "ip netns add " + name_ + ": " + r.err;
      return;
    }
    created_ = true;
    r = exec({ip_tool, "link", "set", "lo", "up"});
    if (r.exit_code != 0) error_ = "ip link set lo up in " + name_ + ": " + r.err;
  }
  ~network_namespace() {
    if (created_) run({ip_tool, "netns", "del", name_});
  }
  network_namespace(const network_namespace&) = delete;
  network_namespace& operator=(const network_namespace&) = delete;

  /// Empty when the namespace is ready.
  const std::string& error() const { return error_; }

  /// `argv` run inside the namespace (ip netns exec replaces itself with argv[0]: same pid).
  std::vector<std::string> inside(std::vector<std::string> argv) const {
    argv.insert(argv.begin(), {ip_tool, "netns", "exec", name_});
    return argv;
  }

  run_result exec(std::vector<std::string> argv) const { return run(inside(std::move(argv))); }

 private:
  std::string name_;
  std::string error_;
  bool created_ = false;
};

/// Sends SIGCONT to a process this test stopped, whatever way the test leaves, so that its
/// `child` can stop it.
struct resume_on_exit {
  pid_t pid = -1;
  ~resume_on_exit() {
    if (pid > 0) ::kill(pid, SIGCONT);
  }
};

class half_open_peer : public ::testing::Test {
 protected:
  temp_dir dir{"certfleet-halfopen"};
  // Destroyed after the processes below, which run inside it.
  std::unique_ptr<network_namespace> netns;
  uint16_t port = free_port();
  std::unique_ptr<child> fleet;
  std::unique_ptr<child> daemon;
  std::string thumbprint;
  std::string id;

  std::filesystem::path fleet_dir() const { return dir / "fleet"; }

  std::vector<std::string> where(std::vector<std::string> argv) const {
    return netns ? netns->inside(std::move(argv)) : argv;
  }

  void SetUp() override {
    std::ofstream{dir / "admin.pw"} << fleet_password << '\n';
    std::filesystem::permissions(
        dir / "admin.pw", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    // Collections far apart: between them only the manager's pings show the agent is alive.
    std::ofstream{dir / "certfleet.toml"}
        << "state_dir = \"" << (dir / "mgr").string() << "\"\n"
        << "[daemon]\nconnect_timeout_ms = 1000\nhandshake_timeout_ms = 2000\n"
        << "backoff_initial_ms = 100\nbackoff_max_ms = 500\ncollect_interval_s = 600\n"
        << "peer_timeout_s = " << peer_timeout_s << "\n";
    ASSERT_EQ(cli({"init"}).exit_code, 0);
  }

  void start_fleet() {
    fleet = std::make_unique<child>(
        where({binary("apps/agent/certfleet-agent"), "--state-dir", fleet_dir().string(), "fleet",
               "--count", "1", "--base-port", std::to_string(port), "--admin-password-file",
               (dir / "admin.pw").string()}),
        dir / "fleet.log");
    ASSERT_TRUE(
        wait_until([&] { return std::filesystem::exists(fleet_dir() / "manifest.json"); }, 60s))
        << fleet->log();
    std::ifstream in{fleet_dir() / "manifest.json"};
    thumbprint = json::parse(in)["endpoints"][0]["thumbprint"];
  }

  void start_daemon() {
    daemon = std::make_unique<child>(
        where({binary("apps/daemon/certfleetd"), "--config", (dir / "certfleet.toml").string()}),
        dir / "daemon.log");
    ASSERT_TRUE(wait_until([&] { return cli({"status"}).exit_code == 0; }, 30s)) << daemon->log();
  }

  /// Adds the endpoint with its thumbprint given in advance and waits for its first collection.
  void add_trusted_server() {
    auto r = cli({"--json", "server", "add", "127.0.0.1:" + std::to_string(port), "--account",
                  "admin", "--password-stdin", "--expect-thumbprint", thumbprint},
                 std::string{fleet_password} + "\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    id = json::parse(r.out)["id"].get<std::string>();
    ASSERT_TRUE(wait_until([&] { return show()["last_collection_ms"].get<int64_t>() > 0; }, 30s))
        << show().dump(2) << daemon->log();
    ASSERT_TRUE(show()["connected"].get<bool>());
  }

  run_result cli(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv{binary("apps/certfleet"), "--config",
                                  (dir / "certfleet.toml").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, input);
  }

  json show() { return json::parse(cli({"--json", "server", "show", id}).out); }

  /// The server's events of `type`, oldest first.
  std::vector<json> events(const std::string& type) {
    auto r = cli({"--json", "events", "--since", "0", "--server", id});
    std::vector<json> out;
    std::istringstream lines{r.out};
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      auto e = json::parse(line);
      if (e["type"] == type) out.push_back(e);
    }
    return out;
  }

  /// After a fault injected at `fault_ms` (wall clock): the daemon records the connection down
  /// with the liveness reason within peer_timeout_s, and the server stays trusted. Returns how long
  /// it took, from the daemon's own connection_down event.
  int64_t expect_drop_detected(int64_t fault_ms, size_t downs_before) {
    auto deadline = std::chrono::seconds{peer_timeout_s} + detection_slack;
    EXPECT_TRUE(
        wait_until([&] { return events("connection_down").size() > downs_before; }, deadline + 2s))
        << show().dump(2) << daemon->log();
    auto downs = events("connection_down");
    if (downs.size() <= downs_before) return -1;
    auto& down = downs[downs_before];
    auto detected_ms = down["time_ms"].get<int64_t>() - fault_ms;
    EXPECT_LE(detected_ms, std::chrono::milliseconds{deadline}.count()) << down.dump();
    EXPECT_NE(down["details"]["reason"].get<std::string>().find("daemon.peer_timeout_s"),
              std::string::npos)
        << down.dump();
    auto v = show();
    EXPECT_EQ(v["state"], "trusted");
    EXPECT_NE(v["last_error"].get<std::string>().find("half-open or the server stopped"),
              std::string::npos)
        << v.dump(2);
    return detected_ms;
  }

  /// Once the fault is over: connected again and a new collection stored.
  void expect_reconnected_and_collected(int64_t after_ms) {
    EXPECT_TRUE(wait_until(
        [&] {
          auto v = show();
          return v["connected"].get<bool>() && v["last_collection_ms"].get<int64_t>() > after_ms;
        },
        20s))
        << show().dump(2) << daemon->log();
    EXPECT_EQ(show()["state"], "trusted");
  }
};

TEST_F(half_open_peer, a_stopped_agent_is_detected_within_peer_timeout_and_collected_once_resumed) {
  start_fleet();
  start_daemon();
  add_trusted_server();
  // Long enough for the liveness pings to be the only traffic.
  std::this_thread::sleep_for(2s);
  auto downs_before = events("connection_down").size();

  resume_on_exit resume{fleet->pid()};
  auto fault_ms = wall_ms();
  ASSERT_EQ(::kill(fleet->pid(), SIGSTOP), 0);
  auto detected_ms = expect_drop_detected(fault_ms, downs_before);
  std::cout << "half-open detection (SIGSTOP, peer_timeout_s " << peer_timeout_s
            << "): " << detected_ms << " ms\n";
  RecordProperty("detection_ms", std::to_string(detected_ms));

  auto resumed_ms = wall_ms();
  ASSERT_EQ(::kill(fleet->pid(), SIGCONT), 0);
  resume.pid = -1;
  expect_reconnected_and_collected(resumed_ms);
}

TEST_F(half_open_peer, dropped_traffic_in_a_network_namespace_is_detected_within_peer_timeout) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root: creates a network namespace and an nftables rule in it";
  if (!std::filesystem::exists(nft_tool))
    GTEST_SKIP() << "needs nftables (" << nft_tool << "; scripts/install-deps.sh installs it)";
  netns = std::make_unique<network_namespace>();
  if (!netns->error().empty()) GTEST_SKIP() << "no network namespace: " << netns->error();
  start_fleet();
  start_daemon();
  add_trusted_server();
  std::this_thread::sleep_for(2s);
  auto downs_before = events("connection_down").size();

  // Both directions of the endpoint's traffic vanish without a reset or an ICMP error.
  auto p = std::to_string(port);
  auto r = netns->exec({nft_tool,
                        "add table inet certfleet_halfopen; "
                        "add chain inet certfleet_halfopen input "
                        "{ type filter hook input priority 0; policy accept; }; "
                        "add rule inet certfleet_halfopen input tcp dport " +
                            p +
                            " drop; "
                            "add rule inet certfleet_halfopen input tcp sport " +
                            p + " drop"});
  auto fault_ms = wall_ms();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto detected_ms = expect_drop_detected(fault_ms, downs_before);
  std::cout << "half-open detection (nftables drop, peer_timeout_s " << peer_timeout_s
            << "): " << detected_ms << " ms\n";
  RecordProperty("detection_ms", std::to_string(detected_ms));

  auto healed_ms = wall_ms();
  r = netns->exec({nft_tool, "delete table inet certfleet_halfopen"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_reconnected_and_collected(healed_ms);
}

}  // namespace
}  // namespace certfleet::test
