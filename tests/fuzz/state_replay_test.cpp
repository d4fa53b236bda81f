// Replays the seed corpora of the manifest, TLS session file and agent state fuzz targets
// (tests/fuzz/state_targets.hpp) in each ctest run, and checks that the corpora hold inputs that
// reach past the first checks (a valid manifest, a session file with a real session, a valid
// accounts file and identity).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/fuzz/state_targets.hpp"
#include "tests/support/temp_dir.hpp"

namespace certfleet {
namespace {

namespace fs = std::filesystem;

const fs::path corpus_root = fs::path{CERTFLEET_SOURCE_DIR} / "tests" / "fuzz" / "corpus";

std::vector<uint8_t> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <class Fn>
void replay_corpus(const std::string& target, Fn fn) {
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(corpus_root / target)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    auto bytes = read_all(entry.path());
    EXPECT_EQ(fn(bytes.data(), bytes.size()), "") << entry.path();
  }
  EXPECT_GE(files, 3u) << "the seed corpus of " << target << " is missing";
}

TEST(fuzz_state_corpus_replay, manifests_parse_validated_and_round_trip_or_fail_typed) {
  replay_corpus("manifest", fuzz::manifest);
}

TEST(fuzz_state_corpus_replay, tls_session_files_load_or_fail_adding_nothing) {
  test::temp_dir dir;
  auto key = master_key::create(dir.path() / "master.key");
  ASSERT_TRUE(key);
  replay_corpus("tls_sessions",
                [&](const uint8_t* d, size_t n) { return fuzz::tls_sessions(*key, d, n); });
}

TEST(fuzz_state_corpus_replay, agent_state_files_load_and_round_trip_or_fail_as_corrupt_data) {
  replay_corpus("agent_state", fuzz::agent_state);
}

TEST(fuzz_state_corpus_replay, the_seeds_reach_past_the_first_checks) {
  // A valid accounts file and identity parse.
  auto accounts = read_all(corpus_root / "agent_state" / "accounts.bin");
  ASSERT_GT(accounts.size(), 1u);
  EXPECT_TRUE(
      agent::account_book::from_json(std::string(accounts.begin() + 1, accounts.end()), "seed"));
  auto ident = read_all(corpus_root / "agent_state" / "identity.bin");
  ASSERT_GT(ident.size(), 1u);
  std::string text(ident.begin() + 1, ident.end());
  auto nul = text.find('\0');
  ASSERT_NE(nul, std::string::npos);
  auto key_pem = text.substr(0, nul);
  EXPECT_TRUE(
      identity::from_pem(secret_bytes(key_pem.begin(), key_pem.end()), text.substr(nul + 1), "s"));
  // A manifest with entries parses.
  auto m = read_all(corpus_root / "manifest" / "fleet.bin");
  ASSERT_GT(m.size(), 1u);
  auto parsed = control::parse_manifest_text(std::string(m.begin() + 1, m.end()), "seed",
                                             control::thumbprint_rule::optional);
  ASSERT_TRUE(parsed) << describe(parsed.error());
  EXPECT_GE(parsed->size(), 2u);
}

}  // namespace
}  // namespace certfleet
