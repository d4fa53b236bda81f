// End-to-end flows with real processes: a certfleet-agent fleet, certfleetd, and the
// certfleet CLI, over real TCP and TLS on 127.0.0.1, with RocksDB's own ldb as an independent
// reader of the manager's database.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/manager.hpp"

namespace certfleet::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* fleet_password = "fleet-secret-Zq81";

struct endpoint {
  std::string address;
  uint16_t port;
  std::string thumbprint;
};

/// A fleet of agent endpoints, a manager state directory and a daemon, all in one temp dir.
class daemon_flow : public ::testing::Test {
 protected:
  temp_dir dir{"certfleet-e2e"};
  std::unique_ptr<child> fleet;
  manager_daemon mgr{dir.path()};
  std::vector<endpoint> endpoints;

  std::filesystem::path state() const { return mgr.state(); }
  std::filesystem::path fleet_dir() const { return dir / "fleet"; }

  void start_fleet(int count) {
    std::ofstream{dir / "admin.pw"} << fleet_password << '\n';
    std::filesystem::permissions(
        dir / "admin.pw", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    fleet = std::make_unique<child>(
        std::vector<std::string>{binary("apps/agent/certfleet-agent"), "--state-dir",
                                 fleet_dir().string(), "fleet", "--count", std::to_string(count),
                                 "--admin-password-file", (dir / "admin.pw").string(),
                                 "--handshake-timeout-ms", "3000"},
        dir / "fleet.log");
    ASSERT_TRUE(
        wait_until([&] { return std::filesystem::exists(fleet_dir() / "manifest.json"); }, 60s))
        << fleet->log();
    std::ifstream in{fleet_dir() / "manifest.json"};
    auto manifest = json::parse(in);
    endpoints.clear();
    for (auto& e : manifest["endpoints"])
      endpoints.push_back({e["address"], e["port"].get<uint16_t>(), e["thumbprint"]});
  }

  void init_manager(const std::string& extra_daemon_settings = "") {
    auto failed =
        mgr.init("collect_interval_s = 1\nmax_concurrent_handshakes = 8\n" + extra_daemon_settings);
    ASSERT_EQ(failed, "");
  }

  /// Starts certfleetd, or with `failpoints` (common/failpoint.hpp) the test build of it.
  void start_daemon(const std::string& failpoints = "") {
    ASSERT_TRUE(mgr.start(failpoints)) << mgr.log();
  }

  int stop_daemon() { return mgr.stop(); }

  run_result cli(std::vector<std::string> args, const std::string& input = "") {
    return mgr.cli(std::move(args), input);
  }

  json cli_json(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), "--json");
    auto r = cli(args, input);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.empty() ? json{} : json::parse(r.out);
  }

  /// Adds endpoint `i` and returns the new server's id.
  std::string add(size_t i, const std::string& password = fleet_password, bool expect = false,
                  const std::string& account = "admin") {
    auto& e = endpoints.at(i);
    std::vector<std::string> args{"server",    "add",   e.address + ":" + std::to_string(e.port),
                                  "--account", account, "--password-stdin"};
    if (expect) args.insert(args.end(), {"--expect-thumbprint", e.thumbprint});
    auto v = cli_json(args, password + "\n");
    return v.value("id", "");
  }

  /// Injects a fault into fleet endpoint `endpoint` ("offline", "online", "regenerate", ...).
  int fault(int endpoint, const std::string& kind) {
    return run({binary("apps/agent/certfleet-agent"), "--state-dir", fleet_dir().string(), "fault",
                "--endpoint", std::to_string(endpoint), kind})
        .exit_code;
  }

  json show(const std::string& id) { return cli_json({"server", "show", id}); }

  bool reaches(const std::string& id, const std::string& state,
               std::chrono::milliseconds timeout = 20s) {
    return wait_until([&] { return show(id).value("state", "") == state; }, timeout);
  }

  std::vector<json> events(uint64_t since = 0) {
    auto r = cli({"--json", "events", "--since", std::to_string(since)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<json> out;
    std::istringstream lines{r.out};
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) out.push_back(json::parse(line));
    return out;
  }

  std::vector<std::string> event_types(const std::string& server_id) {
    std::vector<std::string> out;
    for (auto& e : events())
      if (e["server_id"] == server_id) out.push_back(e["type"]);
    return out;
  }

  /// The credentials column family as RocksDB's ldb sees it (daemon stopped: ldb needs the lock).
  std::string ldb_credentials() {
    auto r = run({"/usr/bin/ldb", "--db=" + (state() / "db").string(),
                  "--column_family=credentials", "scan", "--hex"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }
};

TEST_F(daemon_flow, online_add_registers_deletes_credentials_and_collects_once_trusted) {
  start_fleet(2);
  init_manager();
  start_daemon();
  auto id = add(0);
  ASSERT_TRUE(reaches(id, "awaiting_validation")) << show(id).dump(2);
  auto v = show(id);
  EXPECT_EQ(v["presented_thumbprint"], endpoints[0].thumbprint);
  EXPECT_FALSE(v["credentials_retained"].get<bool>());
  EXPECT_EQ(v.value("last_collection_ms", int64_t{0}), 0)
      << "nothing is collected before validation";

  // No blind trust: a thumbprint other than the presented one is refused.
  auto wrong = cli({"server", "trust", id, "--thumbprint", endpoints[1].thumbprint});
  EXPECT_EQ(wrong.exit_code, 2) << wrong.err;
  EXPECT_NE(wrong.err.find("presented " + endpoints[0].thumbprint), std::string::npos) << wrong.err;

  auto ok = cli({"server", "trust", id, "--thumbprint", endpoints[0].thumbprint});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  ASSERT_TRUE(
      wait_until([&] { return show(id).value("last_collection_ms", int64_t{0}) > 0; }, 20s));
  auto inventory = show(id)["inventory"];
  ASSERT_TRUE(inventory.is_object()) << show(id).dump(2);
  EXPECT_FALSE(inventory["jobs"].empty()) << show(id).dump(2);

  auto types = event_types(id);
  std::vector<std::string> expected{"server_added",        "credentials_retained", "registered",
                                    "validation_required", "credentials_deleted",  "validated",
                                    "connection_up"};
  EXPECT_EQ(types, expected);

  EXPECT_TRUE(WIFEXITED(stop_daemon()));
  EXPECT_TRUE(ldb_values(ldb_credentials()).empty());
  EXPECT_TRUE(files_containing(state(), fleet_password).empty());
}

TEST_F(daemon_flow, a_missing_master_key_with_sealed_credentials_is_refused_and_nothing_changes) {
  start_fleet(1);
  init_manager();
  ASSERT_EQ(fault(0, "offline"), 0);
  start_daemon();
  auto id = add(0, fleet_password, true);
  ASSERT_FALSE(id.empty());
  stop_daemon();
  auto sealed_before = ldb_values(ldb_credentials());
  ASSERT_EQ(sealed_before.size(), 1u);

  // The key moved away (a restore without it, or an operator following old advice).
  std::filesystem::rename(state() / "master.key", dir / "master.key.saved");
  auto d = run({binary("apps/daemon/certfleetd"), "--config", (dir / "certfleet.toml").string()});
  EXPECT_NE(d.exit_code, 0);
  EXPECT_NE(d.err.find("master.key"), std::string::npos) << d.err;
  EXPECT_NE(d.err.find("sealed"), std::string::npos) << d.err;
  auto init = run({binary("apps/certfleet"), "--state-dir", state().string(), "init"});
  EXPECT_NE(init.exit_code, 0) << "init must not orphan the sealed credentials";
  EXPECT_NE(init.err.find("--discard-sealed-credentials"), std::string::npos) << init.err;
  EXPECT_FALSE(std::filesystem::exists(state() / "master.key")) << "no new key was written";
  EXPECT_EQ(ldb_values(ldb_credentials()), sealed_before) << "nothing changed";

  // With the key back, the server is still waiting with its credentials.
  std::filesystem::rename(dir / "master.key.saved", state() / "master.key");
  start_daemon();
  EXPECT_EQ(show(id)["state"], "pending_registration");
  EXPECT_TRUE(show(id)["credentials_retained"].get<bool>());
}

TEST_F(daemon_flow, offline_server_keeps_sealed_credentials_across_restart_until_registered) {
  start_fleet(1);
  init_manager();
  ASSERT_EQ(fault(0, "offline"), 0);
  start_daemon();
  auto id = add(0, fleet_password, true);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_until([&] { return show(id).value("failed_attempts", 0) >= 2; }, 20s))
      << "the offline server is retried";
  EXPECT_EQ(show(id)["state"], "pending_registration");
  EXPECT_TRUE(show(id)["credentials_retained"].get<bool>());

  stop_daemon();
  auto sealed = ldb_values(ldb_credentials());
  ASSERT_EQ(sealed.size(), 1u) << "the credentials are retained, sealed";
  EXPECT_TRUE(files_containing(state(), fleet_password).empty()) << "never in plaintext on disk";
  EXPECT_FALSE(files_containing(state() / "db", sealed[0].substr(10, 24)).empty())
      << "the raw scan finds the sealed blob while it exists";

  start_daemon();
  EXPECT_EQ(show(id)["state"], "pending_registration");
  ASSERT_EQ(fault(0, "online"), 0);
  ASSERT_TRUE(reaches(id, "trusted")) << show(id).dump(2);
  EXPECT_EQ(show(id)["validated_by"], "expected");
  stop_daemon();
  EXPECT_TRUE(ldb_values(ldb_credentials()).empty());
  EXPECT_TRUE(files_containing(state() / "db", sealed[0].substr(10, 24)).empty())
      << "no byte window of the deleted sealed blob remains in any file";
  EXPECT_TRUE(files_containing(state(), fleet_password).empty());

  start_daemon();
  auto types = event_types(id);
  std::vector<std::string> expected{"server_added", "credentials_retained", "registered",
                                    "validated",    "connection_up",        "credentials_deleted"};
  // connection_up and credentials_deleted may be written in either order; compare as sets, and
  // the order of the first four exactly.
  ASSERT_GE(types.size(), 6u);
  EXPECT_EQ(std::vector<std::string>(types.begin(), types.begin() + 4),
            std::vector<std::string>(expected.begin(), expected.begin() + 4));
  EXPECT_EQ(std::multiset<std::string>(types.begin(), types.begin() + 6),
            std::multiset<std::string>(expected.begin(), expected.end()));
}

TEST_F(daemon_flow, kill_9_between_registration_and_credential_deletion_finishes_at_restart) {
  start_fleet(1);
  init_manager();
  start_daemon("server.registered.before_credential_deletion=kill");
  add(0);
  ASSERT_TRUE(wait_until([&] { return !mgr.process().running(); }, 20s)) << mgr.log();
  mgr.release();
  ASSERT_EQ(ldb_values(ldb_credentials()).size(), 1u) << "killed before the deletion";
  start_daemon();
  auto servers = cli_json({"server", "list"});
  ASSERT_EQ(servers.size(), 1u);
  auto id = servers[0]["id"].get<std::string>();
  EXPECT_EQ(servers[0]["state"], "awaiting_validation");
  ASSERT_TRUE(wait_until(
      [&] {
        auto t = event_types(id);
        return std::find(t.begin(), t.end(), "credentials_deleted") != t.end();
      },
      10s));
  stop_daemon();
  EXPECT_TRUE(ldb_values(ldb_credentials()).empty());
}

TEST_F(daemon_flow, denied_registrations_fail_with_the_reason_and_delete_the_credentials) {
  start_fleet(1);
  init_manager();
  start_daemon();
  auto id = add(0, "wrong-password");
  ASSERT_TRUE(reaches(id, "auth_failed")) << show(id).dump(2);
  auto v = show(id);
  EXPECT_NE(v["last_error"].get<std::string>().find("bad_credentials"), std::string::npos);
  EXPECT_FALSE(v["credentials_retained"].get<bool>());
  // Keep guessing: the agent locks the account and says so.
  bool locked = false;
  for (int i = 0; i < 8 && !locked; ++i) {
    auto r = cli({"server", "credentials", id, "--account", "admin", "--password-stdin"},
                 "still-wrong\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto refused = [&] {
      auto v = show(id);
      return v["state"] == "auth_failed" ||
             v["last_error"].get<std::string>().find("locked_out") != std::string::npos;
    };
    ASSERT_TRUE(wait_until(refused, 20s));
    locked = show(id)["last_error"].get<std::string>().find("locked_out") != std::string::npos;
  }
  EXPECT_TRUE(locked) << show(id).dump(2);
  // A lock-out is temporary: the last credentials are kept and retried with backoff.
  auto held = show(id);
  EXPECT_NE(held["state"], "auth_failed") << held.dump(2);
  EXPECT_TRUE(held["credentials_retained"].get<bool>()) << held.dump(2);
  EXPECT_NE(held["last_error"].get<std::string>().find("retrying"), std::string::npos);
  auto types = event_types(id);
  EXPECT_EQ(std::count(types.begin(), types.end(), "credentials_deleted") + 1,
            std::count(types.begin(), types.end(), "credentials_retained"));
  ASSERT_EQ(cli({"server", "remove", id}).exit_code, 0);
  stop_daemon();
  EXPECT_TRUE(ldb_values(ldb_credentials()).empty());
}

TEST_F(daemon_flow, credentials_older_than_their_maximum_age_are_destroyed) {
  start_fleet(1);
  init_manager("credential_max_age_s = 2\n");
  ASSERT_EQ(fault(0, "offline"), 0);
  start_daemon();
  auto id = add(0);
  ASSERT_TRUE(reaches(id, "auth_failed", 20s)) << show(id).dump(2);
  EXPECT_NE(show(id)["last_error"].get<std::string>().find("expired"), std::string::npos);
  EXPECT_FALSE(show(id)["credentials_retained"].get<bool>());
  stop_daemon();
  EXPECT_TRUE(ldb_values(ldb_credentials()).empty());
}

TEST_F(daemon_flow, expected_only_policy_refuses_a_server_without_a_thumbprint) {
  start_fleet(1);
  init_manager("trust_policy = \"expected-only\"\n");
  start_daemon();
  auto& e = endpoints[0];
  auto address = e.address + ":" + std::to_string(e.port);
  auto refused = cli({"server", "add", address, "--account", "admin", "--password-stdin"},
                     std::string{fleet_password} + "\n");
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("--expect-thumbprint"), std::string::npos) << refused.err;
  auto id = add(0, fleet_password, true);
  EXPECT_TRUE(reaches(id, "trusted")) << show(id).dump(2);
}

TEST_F(daemon_flow, tofu_policy_trusts_the_first_thumbprint_and_says_so) {
  start_fleet(1);
  init_manager("trust_policy = \"tofu\"\n");
  start_daemon();
  auto id = add(0);
  ASSERT_TRUE(reaches(id, "trusted")) << show(id).dump(2);
  EXPECT_EQ(show(id)["validated_by"], "tofu");
  EXPECT_EQ(show(id)["pinned_thumbprint"], endpoints[0].thumbprint);
}

TEST_F(daemon_flow, viewer_account_is_denied_with_insufficient_role) {
  auto agent_dir = dir / "agent";
  auto port = free_port();
  auto r = run({binary("apps/agent/certfleet-agent"), "--state-dir", agent_dir.string(), "accounts",
                "add", "viewer", "--role", "viewer", "--password-stdin"},
               "viewer-pw\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  child agent{{binary("apps/agent/certfleet-agent"), "--state-dir", agent_dir.string(), "run",
               "--bind", "127.0.0.1", "--port", std::to_string(port)},
              dir / "agent.log"};
  init_manager();
  start_daemon();
  endpoints.push_back({"127.0.0.1", port, ""});
  std::string id;
  ASSERT_TRUE(
      wait_until([&] { return !(id = add(0, "viewer-pw", false, "viewer")).empty(); }, 10s));
  ASSERT_TRUE(reaches(id, "auth_failed")) << show(id).dump(2) << agent.log();
  EXPECT_NE(show(id)["last_error"].get<std::string>().find("insufficient_role"), std::string::npos);
}

TEST_F(daemon_flow, expected_thumbprint_mismatch_is_never_trusted_and_sends_no_credentials) {
  start_fleet(2);
  init_manager();
  start_daemon();
  auto& e = endpoints[0];
  auto v = cli_json({"server", "add", e.address + ":" + std::to_string(e.port), "--account",
                     "admin", "--password-stdin", "--expect-thumbprint", endpoints[1].thumbprint},
                    std::string{fleet_password} + "\n");
  auto id = v["id"].get<std::string>();
  ASSERT_TRUE(reaches(id, "certificate_mismatch")) << show(id).dump(2);
  auto s = show(id);
  EXPECT_EQ(s["presented_thumbprint"], e.thumbprint);
  EXPECT_TRUE(s["pinned_thumbprint"].is_null());
  EXPECT_FALSE(s["credentials_retained"].get<bool>());
  auto types = event_types(id);
  EXPECT_EQ(std::count(types.begin(), types.end(), "registered"), 0);
  EXPECT_EQ(std::count(types.begin(), types.end(), "certificate_mismatch"), 1);
  // The agent never saw a registration: no manager is stored on that endpoint.
  fleet->stop();
  auto managers = run({binary("apps/agent/certfleet-agent"), "--state-dir", fleet_dir().string(),
                       "managers", "list"});
  EXPECT_EQ(
      managers.out.find(
          json::parse(cli({"--json", "status"}).out)["manager_thumbprint"].get<std::string>()),
      std::string::npos)
      << managers.out << managers.err;
}

TEST_F(daemon_flow,
       a_mismatched_server_is_not_trusted_unregistered_and_new_credentials_register_it) {
  start_fleet(2);
  init_manager();
  start_daemon();
  auto& e = endpoints[0];
  auto v = cli_json({"server", "add", e.address + ":" + std::to_string(e.port), "--account",
                     "admin", "--password-stdin", "--expect-thumbprint", endpoints[1].thumbprint},
                    std::string{fleet_password} + "\n");
  auto id = v["id"].get<std::string>();
  ASSERT_TRUE(reaches(id, "certificate_mismatch")) << show(id).dump(2);
  // The agent never registered this manager: trusting the thumbprint alone is refused, with the
  // fix.
  auto t = cli({"server", "trust", id, "--thumbprint", e.thumbprint});
  EXPECT_EQ(t.exit_code, 8) << t.out << t.err;
  EXPECT_NE(t.err.find("certfleet server credentials " + id), std::string::npos) << t.err;
  EXPECT_EQ(show(id)["state"], "certificate_mismatch");
  auto c = cli({"server", "credentials", id, "--account", "admin", "--password-stdin"},
               std::string{fleet_password} + "\n");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  ASSERT_TRUE(reaches(id, "awaiting_validation")) << show(id).dump(2);
  EXPECT_EQ(show(id)["presented_thumbprint"], e.thumbprint);
  t = cli({"server", "trust", id, "--thumbprint", e.thumbprint});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  ASSERT_TRUE(wait_until([&] { return show(id)["last_collection_ms"].get<int64_t>() > 0; }, 20s))
      << show(id).dump(2);
  EXPECT_EQ(show(id)["state"], "trusted");
  EXPECT_FALSE(show(id)["credentials_retained"].get<bool>());
}

TEST_F(daemon_flow, changed_certificate_blocks_collection_until_the_new_thumbprint_is_trusted) {
  start_fleet(1);
  init_manager();
  start_daemon();
  auto id = add(0, fleet_password, true);
  ASSERT_TRUE(
      wait_until([&] { return show(id).value("last_collection_ms", int64_t{0}) > 0; }, 20s));
  auto agent = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{binary("apps/agent/certfleet-agent"),
                                  "--state-dir",
                                  fleet_dir().string(),
                                  "fault",
                                  "--endpoint",
                                  "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv).exit_code;
  };
  ASSERT_EQ(agent({"regenerate"}), 0);
  ASSERT_EQ(agent({"offline"}), 0);  // drops the live connection so the manager reconnects
  ASSERT_EQ(agent({"online"}), 0);
  ASSERT_TRUE(reaches(id, "certificate_changed")) << show(id).dump(2) << mgr.log();
  std::ifstream in{fleet_dir() / "manifest.json"};
  auto fresh = json::parse(in)["endpoints"][0]["thumbprint"].get<std::string>();
  ASSERT_NE(fresh, endpoints[0].thumbprint);
  auto blocked_at = show(id).value("last_collection_ms", int64_t{0});
  auto all = events();
  auto changed = std::find_if(all.begin(), all.end(),
                              [](const json& e) { return e["type"] == "certificate_changed"; });
  ASSERT_NE(changed, all.end());
  EXPECT_EQ((*changed)["details"]["old_thumbprint"], endpoints[0].thumbprint);
  EXPECT_EQ((*changed)["details"]["new_thumbprint"], fresh);
  // Blocked: nothing is collected while the change waits for an admin (collect interval is 1 s).
  EXPECT_FALSE(wait_until(
      [&] { return show(id).value("last_collection_ms", int64_t{0}) > blocked_at; }, 2500ms));
  ASSERT_EQ(cli({"server", "trust", id, "--thumbprint", fresh}).exit_code, 0);
  EXPECT_TRUE(wait_until(
      [&] { return show(id).value("last_collection_ms", int64_t{0}) > blocked_at; }, 20s));
  EXPECT_EQ(show(id)["pinned_thumbprint"], fresh);
}

TEST_F(daemon_flow, stalled_endpoint_and_dead_port_do_not_delay_a_hundred_healthy_registrations) {
  start_fleet(101);
  init_manager();
  ASSERT_EQ(fault(100, "stall"), 0);
  start_daemon();
  std::ofstream csv{dir / "servers.csv"};
  csv << "host,port,account,expected_thumbprint,name\n";
  auto row = [&](const endpoint& e, const std::string& name) {
    csv << e.address << ',' << e.port << ",admin," << e.thumbprint << ',' << name << '\n';
  };
  row(endpoints[100], "stalled");
  row({"127.0.0.1", free_port(), endpoints[0].thumbprint}, "dead");
  for (int i = 0; i < 100; ++i)
    row(endpoints[static_cast<size_t>(i)], "healthy-" + std::to_string(i));
  csv.close();
  auto r = cli({"server", "add", "--from", (dir / "servers.csv").string(), "--password-stdin"},
               std::string{fleet_password} + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto trusted = [&] {
    size_t n = 0;
    for (auto& s : cli_json({"server", "list"}))
      if (s["state"] == "trusted" && s["name"].get<std::string>().rfind("healthy-", 0) == 0) ++n;
    return n;
  };
  EXPECT_TRUE(wait_until([&] { return trusted() == 100; }, 60s)) << trusted();
  for (auto& s : cli_json({"server", "list"})) {
    if (s["name"] == "stalled" || s["name"] == "dead") {
      EXPECT_EQ(s["state"], "pending_registration") << s.dump(2);
    }
  }
}

/// Connects to the control socket, subscribes with follow, and never reads again.
int never_reading_subscriber(const std::filesystem::path& socket) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return -1;
  int tiny = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof(tiny));
  std::string line = R"({"id":1,"op":"events.subscribe","args":{"since":0,"follow":true}})"
                     "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return -1;
  return fd;
}

TEST_F(daemon_flow,
       events_resume_without_loss_across_restart_and_a_stalled_subscriber_stops_nothing) {
  start_fleet(40);
  init_manager();
  start_daemon();
  int stalled = never_reading_subscriber(state() / "control.sock");
  ASSERT_GE(stalled, 0);
  for (size_t i = 0; i < 20; ++i) add(i, fleet_password, true);
  ASSERT_TRUE(wait_until(
      [&] {
        auto list = cli_json({"server", "list"});
        return std::all_of(list.begin(), list.end(),
                           [](const json& s) { return s["state"] == "trusted"; });
      },
      60s));
  auto before = events();
  ASSERT_FALSE(before.empty());
  auto seen = before.back()["seq"].get<uint64_t>();
  stop_daemon();
  ::close(stalled);
  start_daemon();
  for (size_t i = 20; i < 40; ++i) add(i, fleet_password, true);
  auto after = events(seen);
  ASSERT_FALSE(after.empty());
  uint64_t expect = seen + 1;
  for (auto& e : after) EXPECT_EQ(e["seq"].get<uint64_t>(), expect++) << "gap-free after " << seen;
  auto all = events();
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i]["seq"].get<uint64_t>(), i + 1);
}

}  // namespace
}  // namespace certfleet::test
