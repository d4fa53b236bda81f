// RocksDB's files stay bounded while servers come and go: the add/remove churn of a long-running
// manager must not pile up write-ahead logs, table files or info logs in the state directory.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "storage/state_store.hpp"
#include "tests/support/temp_dir.hpp"

namespace certfleet {
namespace {

namespace fs = std::filesystem;

struct dir_census {
  size_t files = 0;
  uint64_t bytes = 0;
  std::map<std::string, size_t> by_kind;  // "log", "sst", "MANIFEST", ...
};

dir_census census(const fs::path& dir) {
  dir_census c;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    ++c.files;
    c.bytes += e.file_size();
    auto name = e.path().filename().string();
    auto ext = e.path().extension().string();
    std::string kind = ext.empty() ? name : ext.substr(1);
    if (name.rfind("MANIFEST", 0) == 0) kind = "MANIFEST";
    if (name.rfind("OPTIONS", 0) == 0) kind = "OPTIONS";
    if (name.rfind("LOG", 0) == 0) kind = "LOG";
    ++c.by_kind[kind];
  }
  return c;
}

std::string describe(const dir_census& c) {
  std::string out = std::to_string(c.files) + " files, " + std::to_string(c.bytes) + " bytes:";
  for (const auto& [kind, n] : c.by_kind) out += " " + kind + "=" + std::to_string(n);
  return out;
}

server_record make_server(const std::string& id) {
  server_record r;
  r.id = id;
  r.name = "name-" + id;
  r.host = "10.0.0.1";
  r.port = 9401;
  r.account = "certfleet-reg";
  return r;
}

event_record make_event(const std::string& type, const std::string& id) {
  event_record e;
  e.type = type;
  e.server_id = id;
  e.address = "10.0.0.1:9401";
  e.details = "{}";
  return e;
}

// The cycles a manager goes through per server: add with a credential, connectivity, removal.
void churn(state_store& store, int from, int to) {
  sealed_blob blob;
  blob.bytes.assign(60, 0x5a);
  for (int i = from; i < to; ++i) {
    auto id = "s-" + std::to_string(i);
    ASSERT_TRUE(store.put_server(make_server(id), {make_event("server_added", id)}, true));
    ASSERT_FALSE(store.put_credential(id, blob));
    ASSERT_TRUE(store.put_server(make_server(id), {make_event("connection_up", id)}, false));
    ASSERT_FALSE(store.put_inventory(id, R"({"jobs":[]})"));
    auto removed = store.remove_server(id, {make_event("server_removed", id)});
    ASSERT_TRUE(removed) << certfleet::describe(removed.error());
  }
}

// Upper bound on the files of the database directory: CURRENT, IDENTITY, LOCK, two OPTIONS, one
// MANIFEST, a few live logs and the table files of six column families after compaction.
constexpr size_t max_files = 40;

TEST(file_bound, add_remove_churn_keeps_the_database_files_bounded) {
  test::temp_dir dir;
  auto db = dir.path() / "db";
  auto opened = state_store::open(db);
  ASSERT_TRUE(opened) << certfleet::describe(opened.error());
  // CERTFLEET_CHURN_CYCLES lets a person measure a longer run (docs/reliability.md).
  int cycles = 120;
  if (const char* env = std::getenv("CERTFLEET_CHURN_CYCLES")) cycles = std::atoi(env);
  int step = std::max(1, cycles / 3);
  for (int done = 0; done < cycles; done += step) {
    churn(**opened, done, std::min(cycles, done + step));
    auto c = census(db);
    std::cout << "after " << std::min(cycles, done + step) << " cycles: " << describe(c) << '\n';
    EXPECT_LE(c.files, max_files) << describe(c);
    EXPECT_EQ(c.by_kind["LOG"], 0u) << "RocksDB's info log goes to certfleet's log";
  }
  opened->reset();
  auto after = census(db);
  std::cout << "after close: " << describe(after) << '\n';
  EXPECT_LE(after.files, max_files) << describe(after);
}

}  // namespace
}  // namespace certfleet
