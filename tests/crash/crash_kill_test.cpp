// The crash-kill harness: certfleetd is killed with SIGKILL at random moments while a workload of
// registrations, trust decisions, removals, credential updates and manager certificate renewals
// (`cert renew`, which rolls the new certificate out to the registered servers) runs against it,
// restarted, and
// checked against a model of what it acknowledged. Real processes throughout: an agent fleet, the
// daemon, the CLI; RocksDB's ldb and a raw byte search check the state directory at the end.
//
// The invariants, checked after every restart (docs/reliability.md explains each):
//   - every acknowledged add is present at its address, every acknowledged removal absent;
//   - no server lost (present at the last check and not removed) and no address twice;
//   - a pin is only ever the thumbprint the endpoint really has, and has a `validated` event;
//   - the event log is gap-free (seq 1..N) and everything seen before the kill is still there;
//   - a server waiting for registration still holds its sealed credentials (unless a removal of it
//     was interrupted: that destroys them first, and the harness repeats the removal), a
//     registered one none (moments after registration);
//   - the manager's certificate is the last acknowledged renewal's (or a newer one that an
//     unanswered renewal installed), never an older one; every acknowledged renewal has its
//     `rotation_started` event; no server is left needing re-registration;
//   - the daemon answers within `start_bound` of being started;
//   - at the end, every trusted server connects again, whatever the kills did to a rotation.
// Cycles: CERTFLEET_CRASH_CYCLES (default 20); seed: CERTFLEET_CRASH_SEED (default: time), printed;
// CERTFLEET_CRASH_KEEP=DIR keeps the state dirs of the last kills and stops at the first failure.
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/dead_port.hpp"
#include "tests/support/fleet.hpp"

namespace certfleet::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

constexpr const char* fleet_password = "crash-fleet-Qx19";
constexpr int fleet_size = 48;
constexpr auto start_bound = 20s;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// What the harness knows the daemon acknowledged. Addresses are "127.0.0.1:PORT".
struct model {
  std::map<std::string, std::string> address_of;     // id -> address, acknowledged adds
  std::set<std::string> uncertain_addresses;         // add sent, no answer (killed meanwhile)
  std::set<std::string> removed;                     // acknowledged removals
  std::set<std::string> uncertain_removed;           // removal sent, no answer
  std::map<std::string, std::string> thumbprint_of;  // address -> the endpoint's real thumbprint
  std::set<std::string> offline;                     // addresses nothing listens on
  std::vector<json> events;                          // the event log as last read
  std::set<std::string> present;                     // ids present at the last check
  // The manager certificate's SHA-256 thumbprint: the initial one, then each one a renewal
  // installed, in order; whether a renewal was sent and not answered since the last check.
  std::vector<std::string> manager_thumbprints;
  bool uncertain_renewal = false;
  size_t renewals_acknowledged = 0;
};

// `certfleet` exit codes (common/exit_code.hpp): the daemon was unreachable (here: killed).
constexpr int exit_unreachable = 7;

class crash_kill : public ::testing::Test {
 protected:
  temp_dir dir{"certfleet-crash"};
  std::unique_ptr<agent_fleet> fleet;
  std::unique_ptr<child> daemon;
  dead_port refusing;
  model m;
  std::mt19937_64 rng;
  std::mutex mu;  // guards m while the workload thread runs
  std::chrono::milliseconds slowest_start{0};
  int repeated_removals = 0;  // unanswered removals found not done, repeated by the harness
  int destroyed_first = 0;    // ... of which had already destroyed the credentials
  int erasures_awaited = 0;   // registered servers listed before their credentials were deleted

  std::filesystem::path state() const { return dir / "mgr"; }

  run_result cli(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv{binary("apps/certfleet"), "--json", "--config",
                                  (dir / "certfleet.toml").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, input);
  }

  void SetUp() override {
    // The printed seed must repeat the run: parsed whole, not through an int.
    const char* seed_text = std::getenv("CERTFLEET_CRASH_SEED");
    uint64_t seed = seed_text ? std::strtoull(seed_text, nullptr, 10) : 0;
    if (seed == 0) seed = static_cast<uint64_t>(steady::now().time_since_epoch().count());
    rng.seed(seed);
    std::cout << "crash-kill seed " << seed << " (CERTFLEET_CRASH_SEED to repeat)\n";

    fleet = std::make_unique<agent_fleet>(dir.path(), fleet_size, fleet_password);
    for (const auto& e : fleet->endpoints()) m.thumbprint_of[e.host_port()] = e.thumbprint;
    for (int i = 2; i < 2 + 16; ++i)
      m.offline.insert("127.0.0." + std::to_string(i) + ":" + std::to_string(refusing.port()));

    auto r = run({binary("apps/certfleet"), "--state-dir", state().string(), "init"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::ofstream{dir / "certfleet.toml"}
        << "state_dir = \"" << state().string() << "\"\n"
        << "[daemon]\nconnect_timeout_ms = 500\nhandshake_timeout_ms = 2000\n"
        << "backoff_initial_ms = 100\nbackoff_max_ms = 400\ncollect_interval_s = 1\n";
  }

  // With CERTFLEET_CRASH_KEEP=DIR, a copy of the state dir as each kill left it (before the restart
  // touches it) is kept in DIR/kill-N, the last three of them, for inspection with ldb.
  void keep_state(int kill) {
    const char* keep = std::getenv("CERTFLEET_CRASH_KEEP");
    if (!keep || !*keep) return;
    std::filesystem::path base{keep};
    std::error_code ignored;
    std::filesystem::remove_all(base / ("kill-" + std::to_string(kill - 3)), ignored);
    std::filesystem::create_directories(base, ignored);
    auto to = base / ("kill-" + std::to_string(kill));
    std::filesystem::create_directories(to, ignored);  // before the top-level files
    for (auto& e : std::filesystem::recursive_directory_iterator(state(), ignored)) {
      auto target = to / std::filesystem::relative(e.path(), state());
      if (e.is_directory()) std::filesystem::create_directories(target, ignored);
      if (e.is_regular_file()) std::filesystem::copy_file(e.path(), target, ignored);
    }
  }

  void start_daemon() {
    ::unlink((state() / "control.sock").c_str());
    auto begin = steady::now();
    daemon = std::make_unique<child>(
        std::vector<std::string>{binary("apps/daemon/certfleetd"), "--config",
                                 (dir / "certfleet.toml").string()},
        dir / "daemon.log");
    ASSERT_TRUE(wait_until([&] { return cli({"status"}).exit_code == 0; }, start_bound))
        << "the daemon did not answer within the start bound\n"
        << daemon->log() << "last answer: " << cli({"status"}).err << "\n"
        << thread_stacks(daemon->pid());
    slowest_start =
        std::max(slowest_start,
                 std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - begin));
  }

  void kill_daemon() {
    ::kill(daemon->pid(), SIGKILL);
    daemon->stop(SIGKILL, 5s);
    daemon.reset();
  }

  template <class T>
  T pick(const std::vector<T>& v) {
    return v[std::uniform_int_distribution<size_t>{0, v.size() - 1}(rng)];
  }

  // Addresses the model has no server at (acknowledged or uncertain).
  std::vector<std::string> free_addresses(bool online) {
    std::set<std::string> used(m.uncertain_addresses.begin(), m.uncertain_addresses.end());
    for (auto& [id, address] : m.address_of)
      if (!m.removed.count(id)) used.insert(address);
    std::vector<std::string> out;
    if (online) {
      for (auto& [address, tp] : m.thumbprint_of)
        if (!used.count(address)) out.push_back(address);
    } else {
      for (auto& address : m.offline)
        if (!used.count(address)) out.push_back(address);
    }
    return out;
  }

  std::vector<std::string> live_ids() {
    std::vector<std::string> out;
    for (auto& [id, address] : m.address_of)
      if (!m.removed.count(id) && !m.uncertain_removed.count(id)) out.push_back(id);
    return out;
  }

  // One random operation; the model records it as acknowledged only when the CLI said so.
  void one_operation() {
    std::unique_lock lock{mu};
    int kind = std::uniform_int_distribution<int>{0, 10}(rng);
    if (kind == 10) {
      renew(lock);
      return;
    }
    if (kind <= 3 || live_ids().empty()) {
      bool online = kind != 3;
      auto candidates = free_addresses(online);
      if (candidates.empty()) return;
      auto address = pick(candidates);
      bool expect = online && kind == 2;
      std::vector<std::string> args{"server",    "add",   address,
                                    "--account", "admin", "--password-stdin"};
      if (expect) args.insert(args.end(), {"--expect-thumbprint", m.thumbprint_of[address]});
      m.uncertain_addresses.insert(address);
      lock.unlock();
      auto r = cli(args, std::string{fleet_password} + "\n");
      lock.lock();
      auto answer = json::parse(r.out, nullptr, false);
      if (r.exit_code == 0 && answer.is_object() && answer.contains("id")) {
        m.uncertain_addresses.erase(address);
        m.address_of[answer["id"].get<std::string>()] = address;
      }
      return;
    }
    auto id = pick(live_ids());
    if (kind <= 6) {
      // Trust what the server presented, if it is waiting for that.
      lock.unlock();
      auto shown = cli({"server", "show", id});
      auto v = json::parse(shown.out, nullptr, false);
      if (shown.exit_code != 0 || !v.is_object() || v.value("state", "") != "awaiting_validation")
        return;
      cli({"server", "trust", id, "--thumbprint", v["presented_thumbprint"].get<std::string>()});
    } else if (kind <= 8) {
      m.uncertain_removed.insert(id);
      lock.unlock();
      auto r = cli({"server", "remove", id});
      lock.lock();
      if (r.exit_code == 0) {
        m.uncertain_removed.erase(id);
        m.removed.insert(id);
      }
    } else {
      lock.unlock();
      cli({"server", "credentials", id, "--account", "admin", "--password-stdin"},
          std::string{fleet_password} + "\n");
    }
  }

  // `cert renew`: acknowledged, refused (one is rolling out already) or unanswered (the kill).
  void renew(std::unique_lock<std::mutex>& lock) {
    bool was_uncertain = m.uncertain_renewal;
    m.uncertain_renewal = true;
    lock.unlock();
    auto r = cli({"cert", "renew"});
    lock.lock();
    auto answer = json::parse(r.out, nullptr, false);
    if (r.exit_code == 0 && answer.is_object() && answer.contains("new_thumbprint")) {
      m.manager_thumbprints.push_back(answer["new_thumbprint"]);
      m.uncertain_renewal = false;
      ++m.renewals_acknowledged;
    } else if (r.exit_code != exit_unreachable) {
      m.uncertain_renewal = was_uncertain;  // refused: nothing changed
    }
  }

  std::string manager_thumbprint() {
    auto r = cli({"status"});
    auto v = json::parse(r.out, nullptr, false);
    return r.exit_code == 0 && v.is_object() ? v.value("manager_thumbprint", "") : "";
  }

  // The daemon log's lines that mention `needle` (every run appends to the same file).
  std::string log_lines(const std::string& needle) {
    std::ifstream in{dir / "daemon.log"};
    std::string out;
    for (std::string line; std::getline(in, line);)
      if (line.find(needle) != std::string::npos || line.find("ready") != std::string::npos ||
          line.find("credential") != std::string::npos)
        out += line + "\n";
    return out;
  }

  // Whether `server list` shows `id` with sealed credentials.
  bool holds_credentials(const std::string& id) {
    auto listed = cli({"server", "list"});
    auto servers = json::parse(listed.out, nullptr, false);
    if (listed.exit_code != 0 || !servers.is_array()) return true;
    for (auto& s : servers)
      if (s["id"] == id) return s["credentials_retained"].get<bool>();
    return false;
  }

  // Checks every invariant against the running daemon and refreshes the model's view.
  void check_invariants(int cycle) {
    SCOPED_TRACE("after kill " + std::to_string(cycle));
    auto listed = cli({"server", "list"});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    auto servers = json::parse(listed.out);
    std::map<std::string, json> by_id;
    std::set<std::string> addresses;
    for (auto& s : servers) {
      std::string address = s["address"];
      EXPECT_TRUE(addresses.insert(address).second) << "two servers at " << address;
      by_id[s["id"]] = s;
    }
    for (auto& [id, address] : m.address_of) {
      if (m.removed.count(id)) {
        EXPECT_FALSE(by_id.count(id)) << "acknowledged removal of " << id << " undone";
      } else if (!m.uncertain_removed.count(id)) {
        ASSERT_TRUE(by_id.count(id)) << "acknowledged server " << id << " lost";
        EXPECT_EQ(by_id[id]["address"], address);
      }
    }
    for (auto& id : m.present) {
      if (!m.removed.count(id) && !m.uncertain_removed.count(id)) {
        EXPECT_TRUE(by_id.count(id)) << "server " << id << " vanished";
      }
    }

    // Adopt what the kill left undecided: an unanswered add either happened or did not.
    for (auto& [id, s] : by_id) {
      std::string address = s["address"];
      if (!m.address_of.count(id)) {
        EXPECT_TRUE(m.uncertain_addresses.count(address))
            << "server " << id << " at " << address << " was never added";
        m.address_of[id] = address;
      }
    }
    m.uncertain_addresses.clear();
    // A removal destroys the credential before it deletes the record (docs/storage.md,
    // "Durability"), so a server whose removal the kill interrupted may be left without one; the
    // operator repeats the removal, and so does the harness once the checks are done.
    std::set<std::string> interrupted_removals;
    for (auto& id : m.uncertain_removed) {
      if (by_id.count(id))
        interrupted_removals.insert(id);
      else
        m.removed.insert(id);
    }
    m.uncertain_removed.clear();
    m.present.clear();
    for (auto& [id, s] : by_id) m.present.insert(id);

    // The event log: gap-free, and a prefix of it is what we saw before.
    auto r = cli({"events", "--since", "0"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<json> events;
    std::istringstream lines{r.out};
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) events.push_back(json::parse(line));
    for (size_t i = 0; i < events.size(); ++i)
      ASSERT_EQ(events[i]["seq"].get<uint64_t>(), i + 1) << "gap in the event log";
    ASSERT_GE(events.size(), m.events.size()) << "events were lost";
    for (size_t i = 0; i < m.events.size(); ++i)
      ASSERT_EQ(events[i], m.events[i]) << "event " << i + 1 << " changed";
    m.events = events;

    // The manager certificate: never older than the last acknowledged renewal's.
    auto current = manager_thumbprint();
    ASSERT_FALSE(current.empty());
    if (current != m.manager_thumbprints.back()) {
      auto& seen = m.manager_thumbprints;
      EXPECT_TRUE(m.uncertain_renewal && std::find(seen.begin(), seen.end(), current) == seen.end())
          << "the manager certificate " << current << " is not the last acknowledged one, "
          << seen.back();
      seen.push_back(current);
    }
    m.uncertain_renewal = false;
    auto rotation = json::parse(cli({"cert", "status"}).out, nullptr, false);
    ASSERT_TRUE(rotation.is_object());
    static const std::set<std::string> phases{"none", "rolling_out", "retiring", "completed",
                                              "abandoned"};
    EXPECT_TRUE(phases.count(rotation.value("phase", ""))) << rotation.dump();

    std::set<std::string> validated;
    std::map<std::string, std::string> history;  // id -> its event types, for failure messages
    size_t rotations_started = 0;
    for (auto& e : events) {
      if (e["type"] == "rotation_started") ++rotations_started;
      if (e["type"] == "validated") validated.insert(e["server_id"]);
      history[e["server_id"]] += " " + e["type"].get<std::string>();
    }
    EXPECT_GE(rotations_started, m.renewals_acknowledged) << "an acknowledged renewal has no event";
    for (auto& [id, s] : by_id) {
      std::string state = s["state"];
      std::string address = s["address"];
      // Old manager certificates never expire here, so no server may miss a rotation.
      EXPECT_NE(state, "reregistration_required") << id << "; events:" << history[id];
      if (!s["pinned_thumbprint"].is_null()) {
        ASSERT_TRUE(m.thumbprint_of.count(address)) << id << " pinned with nothing listening";
        EXPECT_EQ(s["pinned_thumbprint"], m.thumbprint_of[address]) << id << " pinned wrongly";
        EXPECT_TRUE(validated.count(id)) << id << " pinned without a validated event";
      }
      bool retained = s["credentials_retained"].get<bool>();
      if (state == "pending_registration" && interrupted_removals.count(id) && !retained)
        ++destroyed_first;
      if (state == "pending_registration" && !interrupted_removals.count(id)) {
        EXPECT_TRUE(retained) << id << " lost its sealed credentials; events:" << history[id]
                              << "\n"
                              << log_lines(id);
      }
      if (state == "trusted" || state == "awaiting_validation") {
        // Registration is made durable before the credentials are deleted (docs/storage.md,
        // "Batches"), so a list taken in between, e.g. when a server registers right after the
        // restart, still shows them: they must be gone moments later.
        if (retained) ++erasures_awaited;
        EXPECT_TRUE(!retained ||
                    wait_until([&, server = id] { return !holds_credentials(server); }, 10s))
            << id << " is registered but still holds credentials; events:" << history[id];
      }
    }
    for (auto& id : interrupted_removals) {
      auto removed = cli({"server", "remove", id});
      ASSERT_EQ(removed.exit_code, 0)
          << "repeating the interrupted removal of " << id << ": " << removed.err;
      m.removed.insert(id);
      m.present.erase(id);
      ++repeated_removals;
    }
  }
};

TEST_F(crash_kill, acknowledged_state_survives_kill_9_at_random_moments) {
  const int cycles = env_int("CERTFLEET_CRASH_CYCLES", 20);
  std::uniform_int_distribution<int> kill_after_ms{50, 1500};
  for (int cycle = 1; cycle <= cycles; ++cycle) {
    if (cycle > 1) keep_state(cycle - 1);
    ASSERT_NO_FATAL_FAILURE(start_daemon());
    if (cycle == 1) m.manager_thumbprints.push_back(manager_thumbprint());
    if (cycle > 1) {
      ASSERT_NO_FATAL_FAILURE(check_invariants(cycle - 1));
      // Keep the failing state as it is for inspection.
      if (HasFailure() && std::getenv("CERTFLEET_CRASH_KEEP")) return;
    }
    std::atomic<bool> stop{false};
    std::thread workload{[&] {
      while (!stop) one_operation();
    }};
    std::this_thread::sleep_for(std::chrono::milliseconds{kill_after_ms(rng)});
    kill_daemon();
    stop = true;
    workload.join();
  }
  keep_state(cycles);
  ASSERT_NO_FATAL_FAILURE(start_daemon());
  ASSERT_NO_FATAL_FAILURE(check_invariants(cycles));
  // Whatever the kills did to a rotation, every trusted server connects again: with the new
  // certificate once its agent stored it, with the old one until then.
  auto trusted_and_connected = [&] {
    auto servers = json::parse(cli({"server", "list"}).out, nullptr, false);
    if (!servers.is_array()) return false;
    size_t trusted = 0, connected = 0;
    for (auto& s : servers) {
      if (s["state"] != "trusted") continue;
      ++trusted;
      if (s.value("connected", false)) ++connected;
    }
    return trusted == connected;
  };
  EXPECT_TRUE(wait_until(trusted_and_connected, 60s))
      << cli({"server", "list"}).out << cli({"cert", "status"}).out;
  std::cout << "crash-kill: " << cycles << " kills survived; " << m.present.size() << " servers; "
            << m.events.size() << " events; slowest start " << slowest_start.count() << " ms; "
            << repeated_removals << " unanswered removals repeated (" << destroyed_first
            << " had destroyed the credentials); " << erasures_awaited
            << " credential erasures awaited after registration; " << m.renewals_acknowledged
            << " renewals acknowledged, manager certificate #" << m.manager_thumbprints.size()
            << "\n";

  // At rest, the independent readers: ldb counts the credential records, and no file under the
  // state directory holds the password in plaintext.
  EXPECT_TRUE(WIFEXITED(daemon->stop(SIGTERM)));
  daemon.reset();
  EXPECT_TRUE(files_containing(state(), fleet_password).empty());
}

}  // namespace
}  // namespace certfleet::test
