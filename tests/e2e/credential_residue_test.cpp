// No byte of a deleted credential is left in the state directory after a storm of registrations
// (docs/reliability.md, "Secret deletion"). Real processes: a certfleet-agent fleet (offline while
// its servers are added, so their credentials are sealed and stored), certfleetd, the certfleet
// CLI and RocksDB's own ldb, which dumps the sealed values before they are deleted. Afterwards
// every file under the state directory is searched, raw, for the plaintext password and for every
// sealed blob: after a kill -9 once the deletions are done, and after a clean stop.
// CERTFLEET_RESIDUE_SERVERS sets the fleet size (default 100).
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
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
namespace fs = std::filesystem;

constexpr const char* fleet_password = "fleet-secret-Cr95-plaintext";

size_t fleet_size() {
  const char* v = std::getenv("CERTFLEET_RESIDUE_SERVERS");
  return v != nullptr && std::atoi(v) > 0 ? static_cast<size_t>(std::atoi(v)) : 100;
}

struct search_result {
  size_t files = 0;
  uint64_t bytes = 0;
  size_t hits = 0;
  std::vector<std::string> where;  // "file: needle" for each hit
};

/// Searches every regular file under `dir`, raw, for each of `needles`; a hit is a file holding a
/// needle (counted once per file and needle).
search_result search(const fs::path& dir,
                     const std::vector<std::pair<std::string, std::string>>& needles) {
  search_result r;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in{e.path(), std::ios::binary};
    std::string content{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    ++r.files;
    r.bytes += content.size();
    for (const auto& [name, needle] : needles)
      if (content.find(needle) != std::string::npos) {
        ++r.hits;
        r.where.push_back(e.path().string() + ": " + name);
      }
  }
  return r;
}

class credential_residue : public ::testing::Test {
 protected:
  temp_dir dir{"certfleet-e2e-residue"};
  manager_daemon mgr{dir.path()};
  std::unique_ptr<agent_fleet> fleet;

  int fleet_fault(const std::string& kind) {
    return run({binary("apps/agent/certfleet-agent"), "--state-dir", (dir / "fleet").string(),
                "fault", "--endpoint", "all", kind})
        .exit_code;
  }

  json servers() {
    auto r = mgr.cli({"--json", "server", "list"});
    return r.exit_code == 0 ? json::parse(r.out) : json::array();
  }

  size_t count(const std::string& field, bool value) {
    size_t n = 0;
    for (const auto& s : servers())
      if (s.value(field, !value) == value) ++n;
    return n;
  }

  size_t deleted_events() {
    auto r = mgr.cli({"--json", "events", "--since", "0", "--type", "credentials_deleted"});
    size_t n = 0;
    std::istringstream lines{r.out};
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) ++n;
    return n;
  }
};

TEST_F(credential_residue, no_byte_of_a_deleted_credential_is_left_after_a_registration_storm) {
  const size_t n = fleet_size();
  fleet = std::make_unique<agent_fleet>(dir.path(), static_cast<int>(n), fleet_password);
  ASSERT_EQ(fleet_fault("offline"), 0);
  ASSERT_EQ(mgr.init("max_concurrent_handshakes = 32\n"), "");
  ASSERT_TRUE(mgr.start()) << mgr.log();

  std::ofstream csv{dir / "servers.csv"};
  csv << "host,port,account,expected_thumbprint,name\n";
  for (const auto& e : fleet->endpoints())
    csv << e.address << ',' << e.port << ",admin," << e.thumbprint << ",r-" << e.port << '\n';
  csv.close();
  auto r = mgr.cli({"server", "add", "--from", (dir / "servers.csv").string(), "--password-stdin"},
                   std::string{fleet_password} + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(count("credentials_retained", true), n);
  ASSERT_EQ(mgr.stop(), 0) << mgr.log();

  // The sealed values as RocksDB holds them, read by RocksDB's own tool on a copy (ldb opens
  // read-write).
  fs::copy(mgr.state() / "db", dir / "db-copy", fs::copy_options::recursive);
  auto dump = run({"/usr/bin/ldb", "--db=" + (dir / "db-copy").string(),
                   "--column_family=credentials", "scan", "--hex"});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  fs::remove_all(dir / "db-copy");
  auto blobs = ldb_values(dump.out);
  ASSERT_EQ(blobs.size(), n);
  // Each blob whole, and 24-byte windows of it (its start: version byte, nonce and ciphertext; its
  // middle; its end, the tag), so that a partial copy is found too. 23 of those bytes are random
  // (nonce, ciphertext, tag): a chance match in a few MB is about 2^-160.
  std::vector<std::pair<std::string, std::string>> needles{{"password", fleet_password}};
  for (size_t i = 0; i < blobs.size(); ++i) {
    const auto& b = blobs[i];
    ASSERT_GE(b.size(), 48u);
    auto name = "blob " + std::to_string(i);
    needles.emplace_back(name, b);
    needles.emplace_back(name + " prefix", b.substr(0, 24));
    needles.emplace_back(name + " middle", b.substr(b.size() / 2 - 12, 24));
    needles.emplace_back(name + " suffix", b.substr(b.size() - 24));
  }
  // The search works: every blob is found before the deletion, the password nowhere.
  auto before = search(mgr.state(), needles);
  size_t blobs_found = 0;
  for (const auto& w : before.where) {
    EXPECT_EQ(w.find(": password"), std::string::npos) << w;
    if (w.size() > 5 && w.find(" prefix") == std::string::npos &&
        w.find(" middle") == std::string::npos && w.find(" suffix") == std::string::npos)
      ++blobs_found;
  }
  EXPECT_GE(blobs_found, n) << "every sealed blob is in a file before its deletion";

  // The storm: every server comes up and registers; each registration deletes its credentials.
  ASSERT_TRUE(mgr.start()) << mgr.log();
  ASSERT_EQ(fleet_fault("online"), 0);
  ASSERT_TRUE(wait_until(
      [&] { return count("credentials_retained", false) == n && deleted_events() == n; }, 120s))
      << count("credentials_retained", false) << " of " << n << " deleted; " << mgr.log();

  // Killed without a clean stop once every deletion was reported.
  mgr.stop(SIGKILL);
  auto killed = search(mgr.state(), needles);
  EXPECT_EQ(killed.hits, 0u) << ::testing::PrintToString(killed.where);

  // Restarted (recovery) and stopped cleanly.
  ASSERT_TRUE(mgr.start()) << mgr.log();
  ASSERT_EQ(count("credentials_retained", false), n);
  ASSERT_EQ(mgr.stop(), 0) << mgr.log();
  auto stopped = search(mgr.state(), needles);
  EXPECT_EQ(stopped.hits, 0u) << ::testing::PrintToString(stopped.where);

  std::printf(
      "credential residue: %zu servers, %zu needles; before deletion %zu files, %llu bytes, %zu "
      "hits; after kill -9 %zu files, %llu bytes, %zu hits; after a clean stop %zu files, %llu "
      "bytes, %zu hits\n",
      n, needles.size(), before.files, static_cast<unsigned long long>(before.bytes), before.hits,
      killed.files, static_cast<unsigned long long>(killed.bytes), killed.hits, stopped.files,
      static_cast<unsigned long long>(stopped.bytes), stopped.hits);
}

}  // namespace
}  // namespace certfleet::test
