// Damaged files end to end: a real certfleetd started on a copy of a real state directory whose
// RocksDB table file, MANIFEST, CURRENT or write-ahead log was cut short or overwritten refuses to
// start with the storage exit code, naming the file and the cause, and changes nothing in the
// directory; a write-ahead log torn at its end (what a power loss leaves) is recovered with every
// acknowledged server and credential. A damaged TLS session file costs only full handshakes and is
// kept aside; a damaged agent database stops the agent, naming the file.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/dead_port.hpp"
#include "tests/support/fleet.hpp"

namespace certfleet::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* fleet_password = "fleet-secret-Dm42";
constexpr int exit_storage = 6;

std::string read_all(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(const fs::path& p, const std::string& bytes) {
  std::ofstream out{p, std::ios::binary | std::ios::trunc};
  out << bytes;
}

void overwrite(const fs::path& p, size_t offset, const std::string& bytes) {
  auto content = read_all(p);
  ASSERT_LE(offset + bytes.size(), content.size()) << p;
  content.replace(offset, bytes.size(), bytes);
  write_all(p, content);
}

/// Every file under `dir` with its bytes: equal snapshots mean nothing was written, renamed or
/// deleted.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = read_all(e.path());
  return files;
}

std::vector<fs::path> files_named(const fs::path& dir, const std::string& suffix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    auto name = e.path().filename().string();
    if (name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// A manager state directory with `servers` offline servers (their credentials sealed and
/// stored), and a copy of it for each case.
class damaged_state : public ::testing::Test {
 protected:
  temp_dir dir{"certfleet-e2e-damaged"};
  std::vector<std::unique_ptr<dead_port>> ports;
  static constexpr size_t servers = 4;

  fs::path config_for(const fs::path& state) {
    auto cfg = dir / (state.filename().string() + ".toml");
    std::ofstream{cfg} << "state_dir = \"" << state.string() << "\"\n"
                       << "[daemon]\nbackoff_initial_ms = 60000\nbackoff_max_ms = 60000\n";
    return cfg;
  }

  run_result cli(const fs::path& state, std::vector<std::string> args,
                 const std::string& input = "") {
    std::vector<std::string> argv{binary("apps/certfleet"), "--config", config_for(state).string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, input);
  }

  std::unique_ptr<child> start(const fs::path& state) {
    ::unlink((state / "control.sock").c_str());
    return std::make_unique<child>(std::vector<std::string>{binary("apps/daemon/certfleetd"),
                                                            "--config", config_for(state).string()},
                                   dir / (state.filename().string() + ".log"));
  }

  std::string log_of(const fs::path& state) {
    return read_all(dir / (state.filename().string() + ".log"));
  }

  /// A state directory holding `servers` offline servers, left by a clean stop (`kill_9` false)
  /// or by SIGKILL right after the last add was acknowledged (its write-ahead logs then hold the
  /// server records).
  void make_state(const fs::path& state, bool kill_9) {
    auto r = run({binary("apps/certfleet"), "--state-dir", state.string(), "init"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto daemon = start(state);
    ASSERT_TRUE(wait_until([&] { return cli(state, {"status"}).exit_code == 0; }, 30s))
        << daemon->log();
    for (size_t i = 0; i < servers; ++i) {
      ports.push_back(std::make_unique<dead_port>());
      auto address = "127.0.0.1:" + std::to_string(ports.back()->port());
      r = cli(state, {"server", "add", address, "--account", "admin", "--password-stdin"},
              std::string{fleet_password} + "\n");
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    int status = daemon->stop(kill_9 ? SIGKILL : SIGTERM);
    if (!kill_9) {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << daemon->log();
    }
  }

  fs::path copy_of(const fs::path& state, const std::string& name) {
    ::unlink((state / "control.sock").c_str());  // a killed daemon leaves it; fs::copy refuses
    auto to = dir / name;
    fs::copy(state, to, fs::copy_options::recursive);
    return to;
  }

  /// Starts the daemon on `state` and expects it to refuse: storage exit code, a message naming
  /// `file` and containing `cause`, and every file of the state directory unchanged.
  void expect_refused(const fs::path& state, const fs::path& file, const std::string& cause) {
    SCOPED_TRACE(file.string());
    auto before = snapshot(state);
    auto daemon = start(state);
    ASSERT_TRUE(wait_until([&] { return !daemon->running(); }, 30s))
        << "the daemon started on a damaged database: " << log_of(state);
    int status = daemon->stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == exit_storage)
        << status << ": " << log_of(state);
    auto log = log_of(state);
    EXPECT_NE(log.find(file.string()), std::string::npos) << log;
    EXPECT_NE(log.find(cause), std::string::npos) << log;
    EXPECT_NE(log.find("changed nothing"), std::string::npos) << log;
    auto after = snapshot(state);
    EXPECT_EQ(before.size(), after.size());
    for (const auto& [name, bytes] : before) {
      auto it = after.find(name);
      ASSERT_NE(it, after.end()) << name << " was deleted";
      EXPECT_TRUE(it->second == bytes) << name << " was changed";
    }
    for (const auto& [name, bytes] : after)
      EXPECT_TRUE(before.count(name)) << name << " was created";
  }

  /// Every server with its sealed credentials retained, as the adds acknowledged them.
  void expect_all_servers_with_credentials(const fs::path& state) {
    auto r = cli(state, {"--json", "server", "list"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto list = json::parse(r.out);
    ASSERT_EQ(list.size(), servers) << list.dump(2);
    for (const auto& s : list) EXPECT_TRUE(s.value("credentials_retained", false)) << s.dump(2);
  }
};

TEST_F(damaged_state, a_damaged_table_file_manifest_or_current_file_is_refused_naming_it) {
  auto clean = dir / "clean";
  make_state(clean, false);
  auto db = [](const fs::path& state) { return state / "db"; };

  auto sst_cut = copy_of(clean, "sst-cut");
  auto sst = files_named(db(sst_cut), ".sst").front();
  fs::resize_file(sst, fs::file_size(sst) / 2);
  expect_refused(sst_cut, sst, "Corruption");

  // The first bytes of a table file are a data block: only reading it finds the damage, which a
  // plain open would do after RocksDB had already rewritten the MANIFEST.
  auto sst_flipped = copy_of(clean, "sst-flipped");
  auto flipped = files_named(db(sst_flipped), ".sst").front();
  auto content = read_all(flipped);
  content[10] = static_cast<char>(content[10] ^ 0x5a);
  content[11] = static_cast<char>(content[11] ^ 0x5a);
  write_all(flipped, content);
  expect_refused(sst_flipped, flipped, "checksum mismatch");

  auto sst_gone = copy_of(clean, "sst-gone");
  auto gone = files_named(db(sst_gone), ".sst").back();
  fs::remove(gone);
  expect_refused(sst_gone, gone.parent_path() / gone.stem(), "No such file");

  auto manifest_cut = copy_of(clean, "manifest-cut");
  auto manifest = db(manifest_cut) / read_all(db(manifest_cut) / "CURRENT");
  manifest = manifest.parent_path() / manifest.filename().string().substr(0, 15);
  ASSERT_TRUE(fs::exists(manifest)) << manifest;
  // Cut inside the snapshot each MANIFEST starts with. A cut after a complete later edit leaves an
  // older, consistent database that nothing can tell from the real one (docs/storage.md).
  fs::resize_file(manifest, 120);
  expect_refused(manifest_cut, manifest, "MANIFEST");

  auto manifest_flipped = copy_of(clean, "manifest-flipped");
  manifest = db(manifest_flipped) / manifest.filename();
  overwrite(manifest, fs::file_size(manifest) / 2, "XXXXXXXX");
  expect_refused(manifest_flipped, manifest, "checksum mismatch");

  auto current_empty = copy_of(clean, "current-empty");
  write_all(db(current_empty) / "CURRENT", "");
  expect_refused(current_empty, db(current_empty) / "CURRENT", "CURRENT");

  // Without CURRENT, RocksDB would create a new, empty database beside the old files.
  auto current_gone = copy_of(clean, "current-gone");
  fs::remove(db(current_gone) / "CURRENT");
  expect_refused(current_gone, db(current_gone) / "CURRENT", "missing");

  auto current_wrong = copy_of(clean, "current-wrong");
  write_all(db(current_wrong) / "CURRENT", "MANIFEST-999999\n");
  expect_refused(current_wrong, db(current_wrong) / "MANIFEST-999999", "No such file");

  // The untouched copy still starts, with everything in it.
  auto daemon = start(clean);
  ASSERT_TRUE(wait_until([&] { return cli(clean, {"status"}).exit_code == 0; }, 30s))
      << log_of(clean);
  expect_all_servers_with_credentials(clean);
}

TEST_F(damaged_state, a_damaged_log_record_is_refused_and_a_torn_log_end_is_recovered) {
  auto killed = dir / "killed";
  make_state(killed, true);
  auto logs = files_named(killed / "db", ".log");
  logs.erase(std::remove_if(logs.begin(), logs.end(),
                            [](const fs::path& p) { return fs::file_size(p) == 0; }),
             logs.end());
  ASSERT_GE(logs.size(), 2u) << "kill -9 left the server records in the write-ahead logs";

  // A record of an earlier log and the last record of the newest one, overwritten: complete
  // records that fail their checksum are damage, whatever their place.
  auto first_flipped = copy_of(killed, "first-log-flipped");
  auto first = first_flipped / "db" / logs.front().filename();
  overwrite(first, 40, "XXXX");
  expect_refused(first_flipped, first, "checksum mismatch");

  auto last_flipped = copy_of(killed, "last-log-flipped");
  auto last = last_flipped / "db" / logs.back().filename();
  overwrite(last, 40, "XXXX");
  expect_refused(last_flipped, last, "checksum mismatch");

  // A power loss during an unacknowledged write leaves the newest log ending inside a record: the
  // start of a record whose header promises more bytes than the file holds.
  auto torn = copy_of(killed, "torn");
  auto newest = torn / "db" / logs.back().filename();
  auto partial = read_all(logs.front()).substr(0, 60);
  write_all(newest, read_all(newest) + partial);
  auto daemon = start(torn);
  ASSERT_TRUE(wait_until([&] { return cli(torn, {"status"}).exit_code == 0; }, 30s))
      << log_of(torn);
  expect_all_servers_with_credentials(torn);
  auto log = log_of(torn);
  EXPECT_NE(log.find(newest.string()), std::string::npos) << "RocksDB's warning names the log";
}

TEST_F(damaged_state, a_damaged_agent_database_stops_the_agent_naming_the_file) {
  auto agent_state = dir / "agent";
  auto start_agent = [&](const std::string& log) {
    return std::make_unique<child>(
        std::vector<std::string>{binary("apps/agent/certfleet-agent"), "--state-dir",
                                 agent_state.string(), "run", "--port", "0"},
        dir / log);
  };
  {
    auto agent = start_agent("agent-first.log");
    ASSERT_TRUE(wait_until(
        [&] { return read_all(dir / "agent-first.log").find("Listening") != std::string::npos; },
        30s))
        << agent->log();
    int status = agent->stop(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << agent->log();
  }
  auto logs = files_named(agent_state / "db", ".log");
  ASSERT_FALSE(logs.empty());
  auto log_file = logs.back();
  ASSERT_GT(fs::file_size(log_file), 20u);
  const auto original_log = read_all(log_file);
  overwrite(log_file, 12, "XXXX");
  auto before = snapshot(agent_state / "db");

  auto agent = start_agent("agent-damaged.log");
  ASSERT_TRUE(wait_until([&] { return !agent->running(); }, 30s)) << agent->log();
  int status = agent->stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == exit_storage) << agent->log();
  auto text = agent->log();
  EXPECT_NE(text.find(log_file.string()), std::string::npos) << text;
  EXPECT_NE(text.find("checksum mismatch"), std::string::npos) << text;
  EXPECT_TRUE(snapshot(agent_state / "db") == before) << "the agent changed its damaged database";

  // Its other files are named too: the accounts file, cut short.
  write_all(log_file, original_log);
  auto accounts = agent_state / "accounts.json";
  write_all(accounts, read_all(accounts).substr(0, 1));
  auto again = start_agent("agent-accounts.log");
  ASSERT_TRUE(wait_until([&] { return !again->running(); }, 30s)) << again->log();
  status = again->stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == exit_storage) << again->log();
  EXPECT_NE(again->log().find(accounts.string()), std::string::npos) << again->log();
}

/// A fleet the daemon trusts, for the TLS session file.
class damaged_session_file : public ::testing::Test {
 protected:
  temp_dir dir{"certfleet-e2e-sessions"};
  static constexpr size_t fleet_size = 4;
  std::unique_ptr<agent_fleet> fleet;
  std::unique_ptr<child> daemon;

  fs::path state() const { return dir / "mgr"; }
  fs::path sessions_file() const { return state() / "tls-sessions"; }

  run_result cli(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv{binary("apps/certfleet"), "--config",
                                  (dir / "certfleet.toml").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, input);
  }

  json status() {
    auto r = cli({"--json", "status"});
    return r.exit_code == 0 ? json::parse(r.out) : json{};
  }

  void start_daemon() {
    ::unlink((state() / "control.sock").c_str());
    daemon = std::make_unique<child>(
        std::vector<std::string>{binary("apps/daemon/certfleetd"), "--config",
                                 (dir / "certfleet.toml").string()},
        dir / "daemon.log");
    ASSERT_TRUE(wait_until([&] { return cli({"status"}).exit_code == 0; }, 30s)) << daemon->log();
  }

  void stop_daemon() {
    auto status = daemon->stop(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << daemon->log();
    daemon.reset();
  }

  bool all_trusted_and_connected() {
    return wait_until(
        [&] {
          if (status().value("connected", size_t{0}) != fleet_size) return false;
          auto list = json::parse(cli({"--json", "server", "list"}).out);
          return std::all_of(list.begin(), list.end(),
                             [](const json& s) { return s["state"] == "trusted"; });
        },
        60s);
  }
};

TEST_F(damaged_session_file, is_reported_kept_aside_and_costs_only_full_handshakes) {
  fleet = std::make_unique<agent_fleet>(dir.path(), static_cast<int>(fleet_size), fleet_password);
  auto r = run({binary("apps/certfleet"), "--state-dir", state().string(), "init"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ofstream{dir / "certfleet.toml"} << "state_dir = \"" << state().string() << "\"\n"
                                        << "[daemon]\nbackoff_initial_ms = 100\n"
                                        << "backoff_max_ms = 500\n";
  start_daemon();
  for (const auto& e : fleet->endpoints()) {
    r = cli({"server", "add", e.host_port(), "--account", "admin", "--password-stdin",
             "--expect-thumbprint", e.thumbprint},
            std::string{fleet_password} + "\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  ASSERT_TRUE(all_trusted_and_connected()) << status().dump(2);
  auto servers_before = json::parse(cli({"--json", "server", "list"}).out);
  stop_daemon();

  // One byte of a sealed session changed: it no longer opens under the master key.
  auto damaged = read_all(sessions_file());
  ASSERT_GT(damaged.size(), 100u);
  damaged[damaged.size() - 5] = static_cast<char>(damaged[damaged.size() - 5] ^ 0x01);
  write_all(sessions_file(), damaged);

  start_daemon();
  ASSERT_TRUE(all_trusted_and_connected()) << status().dump(2) << daemon->log();
  auto s = status();
  EXPECT_EQ(s["resumed_handshakes"].get<uint64_t>(), 0u) << s.dump(2);
  auto log = daemon->log();
  EXPECT_NE(log.find("TLS session file " + sessions_file().string()), std::string::npos) << log;
  EXPECT_NE(log.find("does not open under this daemon's master key"), std::string::npos) << log;
  auto aside = sessions_file().string() + ".corrupt";
  EXPECT_NE(log.find("moved aside to " + aside), std::string::npos) << log;
  EXPECT_TRUE(read_all(aside) == damaged) << "the damaged file is kept as it was";

  // Trust state intact: the same servers, pins and states.
  auto servers_after = json::parse(cli({"--json", "server", "list"}).out);
  ASSERT_EQ(servers_after.size(), servers_before.size());
  for (size_t i = 0; i < servers_before.size(); ++i) {
    EXPECT_EQ(servers_after[i]["id"], servers_before[i]["id"]);
    EXPECT_EQ(servers_after[i]["pinned_thumbprint"], servers_before[i]["pinned_thumbprint"]);
    EXPECT_EQ(servers_after[i]["state"], "trusted");
  }
  // The next orderly stop writes a fresh file beside the kept one.
  stop_daemon();
  EXPECT_TRUE(fs::exists(sessions_file()));
  EXPECT_TRUE(read_all(aside) == damaged);
}

}  // namespace
}  // namespace certfleet::test
