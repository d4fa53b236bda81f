// Replays every seed corpus of the parser fuzz targets (tests/fuzz/corpus/<target>/) in each
// ctest run, so a crash once found and fixed stays fixed without a fuzzing build.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/fuzz/targets.hpp"
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

TEST(fuzz_corpus_replay, control_requests_parse_or_fail_as_invalid_arguments) {
  replay_corpus("control_request", fuzz::control_request);
}

TEST(fuzz_corpus_replay, config_files_parse_and_round_trip_or_fail_as_bad_config) {
  replay_corpus("config", fuzz::config);
}

TEST(fuzz_corpus_replay, thumbprints_parse_and_round_trip_or_fail_as_bad_thumbprint) {
  replay_corpus("thumbprint", fuzz::thumbprint_text);
}

TEST(fuzz_corpus_replay, records_decode_canonically_or_fail_as_corrupt_data) {
  replay_corpus("records", fuzz::records);
}

TEST(fuzz_corpus_replay, agent_records_decode_canonically_or_are_refused) {
  replay_corpus("agent_records", fuzz::agent_records);
}

TEST(fuzz_corpus_replay, hostile_sealed_blobs_fail_as_tampered) {
  test::temp_dir dir;
  auto key = master_key::create(dir.path() / "master.key");
  ASSERT_TRUE(key);
  replay_corpus("sealed", [&](const uint8_t* d, size_t n) { return fuzz::sealed(*key, d, n); });
}

}  // namespace
}  // namespace certfleet

namespace certfleet {
namespace {

// Writes the seeds (CERTFLEET_WRITE_CORPUS=1) or checks they are what the encoders make now.
void check_seeds(const std::string& target,
                 const std::vector<std::pair<std::string, std::vector<uint8_t>>>& seeds) {
  const char* write = std::getenv("CERTFLEET_WRITE_CORPUS");
  for (const auto& [name, bytes] : seeds) {
    auto path = corpus_root / target / name;
    if (write != nullptr && std::string{write} == "1") {
      fs::create_directories(path.parent_path());
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(bytes.data()),
                static_cast<std::streamsize>(bytes.size()));
    }
    ASSERT_TRUE(fs::exists(path)) << path << " is missing; run with CERTFLEET_WRITE_CORPUS=1";
    EXPECT_EQ(read_all(path), bytes)
        << path << " is stale; regenerate with CERTFLEET_WRITE_CORPUS=1";
  }
}

// Seeds for the records target: the first byte picks the decoder (0 server, 1 event).
TEST(fuzz_corpus_replay, the_records_corpus_holds_current_encodings) {
  server_record r;
  r.id = "s-1";
  r.name = "backup-1";
  r.host = "10.0.0.5";
  r.port = 9401;
  r.account = "reg";
  r.validated_by = "admin";
  r.pinned = thumbprint{};
  event_record e;
  e.seq = 7;
  e.time_ms = 1700000000000;
  e.type = "trust_changed";
  e.server_id = "s-1";
  e.address = "10.0.0.5:9401";
  e.details = R"({"by":"admin"})";
  std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds;
  auto server_bytes = encode(r);
  server_bytes.insert(server_bytes.begin(), 0);
  seeds.emplace_back("server.bin", server_bytes);
  auto event_bytes = encode(e);
  event_bytes.insert(event_bytes.begin(), 1);
  seeds.emplace_back("event.bin", event_bytes);
  auto truncated = server_bytes;
  truncated.resize(truncated.size() / 2);
  seeds.emplace_back("server_truncated.bin", truncated);
  check_seeds("records", seeds);
}

// Seeds for the agent_records target (the layout is in tests/fuzz/targets.hpp): a manager key and
// value as agent_store writes them, one without a name, and a named value's key.
TEST(fuzz_corpus_replay, the_agent_records_corpus_holds_current_encodings) {
  namespace sd = storage_detail;
  auto t = thumbprint::parse(std::string(64, 'a'));
  ASSERT_TRUE(t);
  auto seed = [](uint8_t mode, const std::string& first, const std::string& rest) {
    std::vector<uint8_t> b{mode, static_cast<uint8_t>(first.size())};
    b.insert(b.end(), first.begin(), first.end());
    b.insert(b.end(), rest.begin(), rest.end());
    return b;
  };
  manager_record m;
  m.manager_thumbprint = *t;
  m.manager_name = "manager-1";
  m.registered_unix_ms = 1700000000000;
  manager_record unnamed = m;
  unnamed.manager_name.clear();
  std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds;
  seeds.emplace_back("manager.bin", seed(0, sd::manager_key(7, *t), sd::encode_manager(m)));
  seeds.emplace_back("manager_unnamed.bin",
                     seed(0, sd::manager_key(0, *t), sd::encode_manager(unnamed)));
  seeds.emplace_back("value_key.bin", seed(1, "identity", sd::value_key(42, "identity")));
  check_seeds("agent_records", seeds);
}

}  // namespace
}  // namespace certfleet
