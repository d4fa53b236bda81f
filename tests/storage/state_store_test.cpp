#include "storage/state_store.hpp"

#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/shell.hpp"
#include "tests/support/temp_dir.hpp"

namespace certfleet {
namespace {

namespace fs = std::filesystem;
using test::command_result;
using test::run_command;

// RocksDB's command-line tool from rocksdb-tools; Debian installs it as plain `ldb`.
const char* const ldb_tool = "ldb";

/// A scratch directory that also names the database inside it.
struct store_dir : test::temp_dir {
  fs::path db() const { return path() / "state.db"; }
};

command_result ldb(const fs::path& db, const std::string& args) {
  return run_command(std::string(ldb_tool) + " --db=" + db.string() + " " + args);
}

std::unique_ptr<state_store> open_store(const fs::path& dir) {
  auto s = state_store::open(dir);
  EXPECT_TRUE(s) << describe(s.error());
  return s ? std::move(*s) : nullptr;
}

std::vector<uint8_t> random_bytes(size_t n) {
  std::random_device rd;
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rd());
  return out;
}

server_record make_server(const std::string& id) {
  server_record r;
  r.id = id;
  r.name = "name-" + id;
  r.host = "10.0.0.1";
  r.port = 9401;
  r.account = "certfleet-reg";
  r.created_ms = 1700000000000;
  return r;
}

event_record make_event(const std::string& type, const std::string& server_id = "s-1") {
  event_record e;
  e.type = type;
  e.server_id = server_id;
  e.address = "10.0.0.1:9401";
  e.details = "{}";
  return e;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// True when `file` holds any 16-byte window of `secret`.
bool holds_any_window(const fs::path& file, const std::vector<uint8_t>& secret) {
  constexpr size_t window = 16;
  auto content = read_all(file);
  for (size_t at = 0; at + window <= secret.size(); ++at) {
    auto first = reinterpret_cast<const char*>(secret.data() + at);
    if (std::search(content.begin(), content.end(),
                    std::boyer_moore_searcher(first, first + window)) != content.end())
      return true;
  }
  return false;
}

// The first regular file under `dir` (recursively) holding any 16-byte window of `secret`, or ""
// when none does.
std::string file_holding_any_window(const fs::path& dir, const std::vector<uint8_t>& secret) {
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file() && holds_any_window(entry.path(), secret))
      return entry.path().string();
  return "";
}

// Fills every family besides credentials, so erasure is tested in a database with other files.
void write_other_data(state_store& store, const std::string& id) {
  ASSERT_TRUE(store.put_server(make_server(id), {make_event("server_added", id)}, true));
  ASSERT_FALSE(store.put_inventory(id, R"({"os":"linux","disks":3})"));
  ASSERT_FALSE(store.put_meta("fleet_name", "test-fleet"));
}

TEST(state_store, everything_written_survives_close_and_reopen) {
  store_dir tmp;
  auto blob = random_bytes(64);
  thumbprint pin(std::array<uint8_t, 32>{9, 8, 7});
  {
    auto store = open_store(tmp.db());
    ASSERT_TRUE(store);
    auto r = make_server("s-1");
    r.state = server_state::trusted;
    r.pinned = pin;
    auto stored = store->put_server(r, {make_event("server_added")}, true);
    ASSERT_TRUE(stored) << describe(stored.error());
    ASSERT_FALSE(store->put_credential("s-1", sealed_blob{blob}));
    ASSERT_FALSE(store->put_inventory("s-1", R"({"disks":2})"));
    ASSERT_FALSE(store->put_meta("fleet_name", "alpha"));
    ASSERT_TRUE(store->append_events({make_event("trusted")}));
  }
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  auto r = store->get_server("s-1");
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->name, "name-s-1");
  EXPECT_EQ((*r)->state, server_state::trusted);
  ASSERT_TRUE((*r)->pinned);
  EXPECT_TRUE(*(*r)->pinned == pin);
  EXPECT_EQ(store->server_count(), 1u);
  auto c = store->get_credential("s-1");
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->bytes, blob);
  EXPECT_EQ(store->credential_ids(), std::vector<std::string>{"s-1"});
  auto inv = store->get_inventory("s-1");
  ASSERT_TRUE(inv && *inv);
  EXPECT_EQ(**inv, R"({"disks":2})");
  auto m = store->get_meta("fleet_name");
  ASSERT_TRUE(m && *m);
  EXPECT_EQ(**m, "alpha");
  auto evs = store->read_events(0, 10);
  ASSERT_TRUE(evs);
  ASSERT_EQ(evs->size(), 2u);
  EXPECT_EQ((*evs)[0].type, "server_added");
  EXPECT_EQ((*evs)[1].type, "trusted");
  EXPECT_GT((*evs)[1].time_ms, 0) << "a missing time is filled in";
  EXPECT_EQ(store->last_event_seq(), 2u);
  EXPECT_FALSE(*store->get_server("s-2"));
  EXPECT_FALSE(*store->get_credential("s-2"));
  EXPECT_FALSE(*store->get_inventory("s-2"));
  EXPECT_FALSE(*store->get_meta("nothing"));
}

TEST(state_store, event_seqs_are_gap_free_across_every_writer_and_reopen) {
  store_dir tmp;
  {
    auto store = open_store(tmp.db());
    ASSERT_TRUE(store);
    EXPECT_EQ(store->last_event_seq(), 0u);
    auto a = store->put_server(make_server("s-1"), {make_event("a"), make_event("b")}, false);
    ASSERT_TRUE(a);
    EXPECT_EQ((*a)[0].seq, 1u);
    EXPECT_EQ((*a)[1].seq, 2u);
    auto b = store->append_events({make_event("c")});
    ASSERT_TRUE(b);
    EXPECT_EQ((*b)[0].seq, 3u);
    ASSERT_FALSE(store->put_credential("s-1", sealed_blob{random_bytes(40)}));
    auto c = store->erase_credential("s-1", {make_event("d")});
    ASSERT_TRUE(c) << describe(c.error());
    EXPECT_EQ((*c)[0].seq, 4u);
    auto none = store->put_server(make_server("s-2"), {}, false);
    ASSERT_TRUE(none);
    EXPECT_EQ(store->last_event_seq(), 4u);
  }
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->last_event_seq(), 4u);
  auto d = store->remove_server("s-2", {make_event("e")});
  ASSERT_TRUE(d) << describe(d.error());
  EXPECT_EQ((*d)[0].seq, 5u);
  auto all = store->read_events(0, 100);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 5u);
  for (size_t i = 0; i < all->size(); ++i) EXPECT_EQ((*all)[i].seq, i + 1);
  EXPECT_EQ((*all)[3].type, "d");
}

TEST(state_store, concurrent_appends_from_four_threads_get_each_seq_exactly_once) {
  store_dir tmp;
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  constexpr int threads = 4;
  constexpr int per_thread = 50;
  std::vector<std::vector<uint64_t>> seen(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        auto r = store->append_events({make_event("t" + std::to_string(t))});
        if (r)
          for (const auto& e : *r) seen[static_cast<size_t>(t)].push_back(e.seq);
      }
    });
  for (auto& w : workers) w.join();
  std::vector<uint64_t> all;
  for (const auto& s : seen) {
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end())) << "one thread's seqs go up";
    all.insert(all.end(), s.begin(), s.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(threads * per_thread));
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i + 1);
  auto stored = store->read_events(0, 1000);
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored->size(), all.size());
  for (size_t i = 0; i < stored->size(); ++i) EXPECT_EQ((*stored)[i].seq, i + 1);
}

TEST(state_store, read_events_pages_through_the_log_in_order) {
  store_dir tmp;
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  std::vector<event_record> batch;
  for (int i = 0; i < 25; ++i) batch.push_back(make_event("e" + std::to_string(i)));
  ASSERT_TRUE(store->append_events(batch));
  std::vector<uint64_t> seqs;
  uint64_t since = 0;
  for (;;) {
    auto page = store->read_events(since, 10);
    ASSERT_TRUE(page);
    if (page->empty()) break;
    EXPECT_LE(page->size(), 10u);
    for (const auto& e : *page) seqs.push_back(e.seq);
    since = page->back().seq;
  }
  ASSERT_EQ(seqs.size(), 25u);
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1);
  EXPECT_TRUE(store->read_events(25, 10)->empty());
  EXPECT_TRUE(store->read_events(3, 0)->empty());
  EXPECT_EQ(store->read_events(20, 100)->size(), 5u);
}

TEST(state_store, trim_events_keeps_the_newest_and_the_oldest_kept_seq_survives_reopen) {
  store_dir tmp;
  {
    auto store = open_store(tmp.db());
    ASSERT_TRUE(store);
    std::vector<event_record> batch;
    for (int i = 1; i <= 10; ++i) {
      auto e = make_event("connection_up");
      e.time_ms = 1000 * i;
      batch.push_back(e);
    }
    ASSERT_TRUE(store->append_events(batch));
    EXPECT_EQ(store->first_event_seq(), 1u);
    ASSERT_FALSE(store->trim_events(6, 0));
    EXPECT_EQ(store->first_event_seq(), 5u);
    auto kept = store->read_events(0, 100);
    ASSERT_TRUE(kept);
    ASSERT_EQ(kept->size(), 6u);
    EXPECT_EQ(kept->front().seq, 5u);
    EXPECT_EQ(kept->back().seq, 10u);
    // Age: events with time below 7000 go even though `keep` would allow them.
    ASSERT_FALSE(store->trim_events(100, 7000));
    EXPECT_EQ(store->first_event_seq(), 7u);
  }
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->first_event_seq(), 7u);
  EXPECT_EQ(store->last_event_seq(), 10u);
  auto kept = store->read_events(0, 100);
  ASSERT_TRUE(kept);
  ASSERT_EQ(kept->size(), 4u);
  EXPECT_EQ(kept->front().seq, 7u);
  auto next = store->append_events({make_event("connection_down")});
  ASSERT_TRUE(next);
  EXPECT_EQ((*next)[0].seq, 11u) << "trimming never reuses seqs";
  ASSERT_FALSE(store->trim_events(0, 0));
  EXPECT_EQ(store->first_event_seq(), 12u);
  EXPECT_TRUE(store->read_events(0, 100)->empty());
}

TEST(state_store, trimming_by_count_removes_connectivity_events_and_never_trust_events) {
  store_dir tmp;
  std::vector<std::string> types = {"validated",           "connection_up", "connection_down",
                                    "certificate_changed", "connection_up", "connection_down",
                                    "credentials_deleted"};
  {
    auto store = open_store(tmp.db());
    ASSERT_TRUE(store);
    std::vector<event_record> batch;
    for (const auto& t : types) batch.push_back(make_event(t));
    // A flapping fleet: many more connectivity events than the count allows.
    for (int i = 0; i < 40; ++i)
      batch.push_back(make_event(i % 2 ? "connection_down" : "connection_up"));
    ASSERT_TRUE(store->append_events(batch));
    ASSERT_FALSE(store->trim_events(10, 0));
    auto kept = store->read_events(0, 1000);
    ASSERT_TRUE(kept);
    ASSERT_EQ(kept->size(), 10u);
    std::vector<std::string> trust;
    for (auto& e : *kept)
      if (e.type != "connection_up" && e.type != "connection_down") trust.push_back(e.type);
    EXPECT_EQ(trust, (std::vector<std::string>{"validated", "certificate_changed",
                                               "credentials_deleted"}));
    EXPECT_EQ(kept->front().seq, 1u);
    EXPECT_EQ(kept->back().seq, 47u) << "the newest events stay";
    EXPECT_EQ(store->first_event_seq(), 1u);
    // Trimming to nothing leaves exactly the trust events, and trimming again changes nothing.
    ASSERT_FALSE(store->trim_events(0, 0));
    ASSERT_FALSE(store->trim_events(0, 0));
    EXPECT_EQ(store->read_events(0, 1000)->size(), 3u);
  }
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  auto kept = store->read_events(0, 1000);
  ASSERT_TRUE(kept);
  ASSERT_EQ(kept->size(), 3u);
  EXPECT_EQ((*kept)[2].type, "credentials_deleted");
  auto next = store->append_events({make_event("connection_up"), make_event("connection_down")});
  ASSERT_TRUE(next);
  EXPECT_EQ((*next)[0].seq, 48u);
  ASSERT_FALSE(store->trim_events(4, 0));
  EXPECT_EQ(store->read_events(0, 1000)->size(), 4u) << "one connectivity event goes";
  EXPECT_EQ(store->read_events(0, 1000)->back().seq, 49u);
}

TEST(state_store, trust_events_are_removed_by_age) {
  store_dir tmp;
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  std::vector<event_record> batch;
  for (int i = 1; i <= 6; ++i) {
    auto e = make_event(i % 2 ? "validated" : "connection_up");
    e.time_ms = 1000 * i;
    batch.push_back(e);
  }
  ASSERT_TRUE(store->append_events(batch));
  ASSERT_FALSE(store->trim_events(0, 0));  // connectivity 2, 4, 6 go
  EXPECT_EQ(store->read_events(0, 100)->size(), 3u);
  ASSERT_FALSE(store->trim_events(0, 4000));  // validated 1 and 3 are too old
  auto kept = store->read_events(0, 100);
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ(kept->front().seq, 5u);
  EXPECT_EQ(store->first_event_seq(), 5u);
}

TEST(state_store, for_each_server_visits_in_id_order_and_stops_when_asked) {
  store_dir tmp;
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  for (auto id : {"s-3", "s-1", "s-2"}) ASSERT_TRUE(store->put_server(make_server(id), {}, false));
  ASSERT_TRUE(store->put_server(make_server("s-2"), {}, false)) << "an update is not a new server";
  EXPECT_EQ(store->server_count(), 3u);
  std::vector<std::string> ids;
  ASSERT_FALSE(store->for_each_server([&](const server_record& r) {
    ids.push_back(r.id);
    return true;
  }));
  EXPECT_EQ(ids, (std::vector<std::string>{"s-1", "s-2", "s-3"}));
  ids.clear();
  ASSERT_FALSE(store->for_each_server([&](const server_record& r) {
    ids.push_back(r.id);
    return ids.size() < 2;
  }));
  EXPECT_EQ(ids.size(), 2u);
  ASSERT_TRUE(store->remove_server("s-1", {}));
  ASSERT_TRUE(store->remove_server("s-1", {})) << "removing twice is harmless";
  EXPECT_EQ(store->server_count(), 2u);
}

TEST(state_store, remove_server_deletes_its_record_inventory_and_credential) {
  store_dir tmp;
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  write_other_data(*store, "s-1");
  write_other_data(*store, "s-2");
  ASSERT_FALSE(store->put_credential("s-1", sealed_blob{random_bytes(48)}));
  ASSERT_FALSE(store->put_credential("s-2", sealed_blob{random_bytes(48)}));
  auto removed = store->remove_server("s-1", {make_event("server_removed")});
  ASSERT_TRUE(removed) << describe(removed.error());
  EXPECT_FALSE(*store->get_server("s-1"));
  EXPECT_FALSE(*store->get_inventory("s-1"));
  EXPECT_FALSE(*store->get_credential("s-1"));
  EXPECT_EQ(store->credential_ids(), std::vector<std::string>{"s-2"});
  EXPECT_TRUE(*store->get_server("s-2"));
  EXPECT_TRUE(*store->get_credential("s-2"));
}

TEST(state_store, put_meta_refuses_the_keys_the_store_keeps_for_itself) {
  store_dir tmp;
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  auto err = store->put_meta("store.schema_version", "7");
  EXPECT_EQ(code_of(err), ec::invalid_argument);
  auto v = store->get_meta("store.schema_version");
  ASSERT_TRUE(v && *v);
  EXPECT_EQ(**v, "1");
}

// -- erasure --------------------------------------------------------------------------------

// Writes a credential plus data in the other families, reopens so everything sits in table
// files, and checks that the blob is findable (the scan works) and that ldb lists the key.
void prepare_credential_on_disk(const fs::path& db, const std::string& id,
                                const std::vector<uint8_t>& blob) {
  {
    auto store = open_store(db);
    ASSERT_TRUE(store);
    write_other_data(*store, id);
    write_other_data(*store, "s-other");
    ASSERT_FALSE(store->put_credential(id, sealed_blob{blob}));
    ASSERT_FALSE(store->put_credential("s-other", sealed_blob{random_bytes(64)}));
    EXPECT_NE(file_holding_any_window(db, blob), "") << "the scan must find a stored blob";
  }
  EXPECT_NE(file_holding_any_window(db, blob), "");
  auto listed = ldb(db, "--column_family=credentials scan");
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find(id + " : "), std::string::npos) << listed.output;
}

void expect_credential_gone_after_close(const fs::path& db, const std::string& id,
                                        const std::vector<uint8_t>& blob) {
  EXPECT_EQ(file_holding_any_window(db, blob), "") << "after close";
  auto listed = ldb(db, "--column_family=credentials scan");
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_EQ(listed.output.find(id + " : "), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find("s-other : "), std::string::npos)
      << "other credentials stay: " << listed.output;
}

TEST(credential_erasure, erase_credential_leaves_no_byte_of_the_blob_in_any_file) {
  store_dir tmp;
  auto blob = random_bytes(64);
  prepare_credential_on_disk(tmp.db(), "s-victim", blob);
  {
    auto store = open_store(tmp.db());
    ASSERT_TRUE(store);
    EXPECT_NE(file_holding_any_window(tmp.db(), blob), "") << "found again after reopen";
    auto erased = store->erase_credential("s-victim", {make_event("credentials_erased")});
    ASSERT_TRUE(erased) << describe(erased.error());
    EXPECT_EQ(file_holding_any_window(tmp.db(), blob), "") << "while the database is open";
    EXPECT_FALSE(*store->get_credential("s-victim"));
    ASSERT_TRUE(*store->get_credential("s-other"));
    ASSERT_TRUE(*store->get_server("s-victim")) << "only the credential goes";
  }
  expect_credential_gone_after_close(tmp.db(), "s-victim", blob);
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  EXPECT_FALSE(*store->get_credential("s-victim"));
  EXPECT_EQ(store->read_events(0, 100)->back().type, "credentials_erased");
}

TEST(credential_erasure, remove_server_leaves_no_byte_of_the_blob_in_any_file) {
  store_dir tmp;
  auto blob = random_bytes(64);
  prepare_credential_on_disk(tmp.db(), "s-victim", blob);
  {
    auto store = open_store(tmp.db());
    ASSERT_TRUE(store);
    auto removed = store->remove_server("s-victim", {make_event("server_removed")});
    ASSERT_TRUE(removed) << describe(removed.error());
    EXPECT_EQ(file_holding_any_window(tmp.db(), blob), "") << "while the database is open";
    EXPECT_FALSE(*store->get_server("s-victim"));
  }
  expect_credential_gone_after_close(tmp.db(), "s-victim", blob);
}

TEST(credential_erasure, a_credential_erased_in_the_session_that_wrote_it_leaves_no_byte) {
  store_dir tmp;
  auto blob = random_bytes(64);
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  write_other_data(*store, "s-victim");
  ASSERT_FALSE(store->put_credential("s-victim", sealed_blob{blob}));
  write_other_data(*store, "s-later");
  ASSERT_NE(file_holding_any_window(tmp.db(), blob), "");
  ASSERT_TRUE(store->erase_credential("s-victim", {make_event("credentials_erased")}));
  EXPECT_EQ(file_holding_any_window(tmp.db(), blob), "");
  store.reset();
  EXPECT_EQ(file_holding_any_window(tmp.db(), blob), "") << "after close";
}

TEST(credential_erasure, a_replaced_credential_leaves_no_byte_of_the_old_blob) {
  store_dir tmp;
  auto old_blob = random_bytes(64);
  auto new_blob = random_bytes(64);
  prepare_credential_on_disk(tmp.db(), "s-victim", old_blob);
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  ASSERT_FALSE(store->put_credential("s-victim", sealed_blob{new_blob}));
  EXPECT_EQ(file_holding_any_window(tmp.db(), old_blob), "");
  EXPECT_NE(file_holding_any_window(tmp.db(), new_blob), "");
  EXPECT_EQ((*store->get_credential("s-victim"))->bytes, new_blob);
}

TEST(credential_erasure, a_credential_is_durable_without_the_write_ahead_log) {
  store_dir tmp;
  auto blob = random_bytes(64);
  {
    auto store = open_store(tmp.db());
    ASSERT_TRUE(store);
    ASSERT_FALSE(store->put_credential("s-1", sealed_blob{blob}));
    for (const auto& entry : fs::directory_iterator(tmp.db())) {
      if (entry.path().extension() != ".log") continue;
      EXPECT_FALSE(holds_any_window(entry.path(), blob))
          << "the blob reached the write-ahead log " << entry.path();
    }
  }
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  EXPECT_EQ((*store->get_credential("s-1"))->bytes, blob);
}

// -- batches ----------------------------------------------------------------------------------

std::string batch_id(size_t i) {
  return "s-batch-" + std::to_string(1000 + i);
}

TEST(credential_batches, put_credentials_stores_a_whole_batch_durably_and_outside_the_log) {
  store_dir tmp;
  std::vector<std::pair<std::string, sealed_blob>> batch;
  for (size_t i = 0; i < 300; ++i) batch.emplace_back(batch_id(i), sealed_blob{random_bytes(64)});
  {
    auto store = open_store(tmp.db());
    ASSERT_TRUE(store);
    auto err = store->put_credentials(batch);
    ASSERT_FALSE(err) << describe(err);
    for (const auto& entry : fs::directory_iterator(tmp.db())) {
      if (entry.path().extension() != ".log") continue;
      EXPECT_FALSE(holds_any_window(entry.path(), batch.front().second.bytes))
          << "a blob reached the write-ahead log " << entry.path();
    }
  }
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->credential_ids().size(), batch.size());
  for (const auto& [id, blob] : batch) {
    auto stored = store->get_credential(id);
    ASSERT_TRUE(stored && *stored) << id;
    EXPECT_EQ((*stored)->bytes, blob.bytes) << id;
  }
}

TEST(credential_batches, a_batch_replacing_a_credential_leaves_no_byte_of_the_old_blob) {
  store_dir tmp;
  auto old_blob = random_bytes(64);
  auto new_blob = random_bytes(64);
  auto shadowed = random_bytes(64);
  prepare_credential_on_disk(tmp.db(), "s-victim", old_blob);
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  // Within one batch the last entry for an id wins; the earlier one is never stored.
  ASSERT_FALSE(store->put_credentials({{"s-victim", sealed_blob{shadowed}},
                                       {"s-new", sealed_blob{random_bytes(64)}},
                                       {"s-victim", sealed_blob{new_blob}}}));
  EXPECT_EQ(file_holding_any_window(tmp.db(), old_blob), "");
  EXPECT_EQ(file_holding_any_window(tmp.db(), shadowed), "");
  EXPECT_EQ((*store->get_credential("s-victim"))->bytes, new_blob);
  EXPECT_TRUE(*store->get_credential("s-new"));
}

TEST(credential_batches, erase_credentials_leaves_no_byte_of_any_blob_of_the_batch_in_any_file) {
  store_dir tmp;
  constexpr size_t n = 40;
  std::vector<std::vector<uint8_t>> blobs;
  std::vector<std::string> ids;
  {
    auto store = open_store(tmp.db());
    ASSERT_TRUE(store);
    write_other_data(*store, "s-other");
    ASSERT_FALSE(store->put_credential("s-other", sealed_blob{random_bytes(64)}));
    // Spread the blobs over several table files (one per flush) and both sides of a reopen.
    for (size_t i = 0; i < n; ++i) {
      ids.push_back(batch_id(i));
      blobs.push_back(random_bytes(64));
      write_other_data(*store, ids.back());
      if (i % 2 == 0) {
        ASSERT_FALSE(store->put_credential(ids.back(), sealed_blob{blobs.back()}));
      }
    }
    std::vector<std::pair<std::string, sealed_blob>> rest;
    for (size_t i = 1; i < n; i += 2) rest.emplace_back(ids[i], sealed_blob{blobs[i]});
    ASSERT_FALSE(store->put_credentials(rest));
  }
  for (const auto& blob : blobs)
    ASSERT_NE(file_holding_any_window(tmp.db(), blob), "") << "the scan must find every blob";
  auto listed = ldb(tmp.db(), "--column_family=credentials scan");
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  for (const auto& id : ids) ASSERT_NE(listed.output.find(id + " : "), std::string::npos) << id;
  {
    auto store = open_store(tmp.db());
    ASSERT_TRUE(store);
    auto before = store->last_event_seq();
    std::vector<event_record> events;
    for (const auto& id : ids) events.push_back(make_event("credentials_deleted", id));
    auto erased = store->erase_credentials(ids, events);
    ASSERT_TRUE(erased) << describe(erased.error());
    ASSERT_EQ(erased->size(), n);
    EXPECT_EQ(erased->front().seq, before + 1);
    EXPECT_EQ(erased->back().seq, before + n);
    for (size_t i = 0; i < n; ++i)
      EXPECT_EQ(file_holding_any_window(tmp.db(), blobs[i]), "") << ids[i] << " while open";
    EXPECT_TRUE(store->credential_ids() == std::vector<std::string>{"s-other"});
    for (const auto& id : ids) EXPECT_TRUE(*store->get_server(id)) << "only the credential goes";
  }
  for (size_t i = 0; i < n; ++i)
    EXPECT_EQ(file_holding_any_window(tmp.db(), blobs[i]), "") << ids[i] << " after close";
  listed = ldb(tmp.db(), "--column_family=credentials scan");
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  for (const auto& id : ids) EXPECT_EQ(listed.output.find(id + " : "), std::string::npos) << id;
  EXPECT_NE(listed.output.find("s-other : "), std::string::npos) << listed.output;
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  auto events = store->read_events(store->last_event_seq() - n, n);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), n);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ((*events)[i].type, "credentials_deleted");
    EXPECT_EQ((*events)[i].server_id, ids[i]);
  }
}

TEST(state_store, put_servers_stores_every_record_and_event_in_order_and_counts_new_ones) {
  store_dir tmp;
  {
    auto store = open_store(tmp.db());
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->put_server(make_server("s-known"), {}, true));
    auto changed = make_server("s-known");
    changed.name = "renamed";
    std::vector<server_record> records{make_server("s-a"), changed, make_server("s-b")};
    std::vector<event_record> events{make_event("server_added", "s-a"),
                                     make_event("credentials_retained", "s-a"),
                                     make_event("server_added", "s-b")};
    auto stored = store->put_servers(records, events);
    ASSERT_TRUE(stored) << describe(stored.error());
    ASSERT_EQ(stored->size(), 3u);
    EXPECT_EQ(stored->front().seq, 1u);
    EXPECT_EQ(stored->back().seq, 3u);
    EXPECT_EQ(store->server_count(), 3u);
  }
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->server_count(), 3u);
  EXPECT_EQ((*store->get_server("s-known"))->name, "renamed");
  EXPECT_TRUE(*store->get_server("s-a"));
  EXPECT_TRUE(*store->get_server("s-b"));
  auto events = store->read_events(0, 10);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[1].type, "credentials_retained");
  EXPECT_EQ((*events)[2].server_id, "s-b");
}

TEST(wal_sync, unsynced_connectivity_events_are_fsynced_by_the_store_without_a_caller) {
  store_dir tmp;
  {
    auto store = open_store(tmp.db());
    ASSERT_TRUE(store);
    EXPECT_FALSE(store->wait_for_wal_sync(std::chrono::milliseconds{0}))
        << "nothing written, nothing to wait for";
    for (int i = 0; i < 200; ++i) {
      auto stored = store->put_server(
          make_server("s-1"), {make_event(i % 2 ? "connection_down" : "connection_up")}, false);
      ASSERT_TRUE(stored) << describe(stored.error());
      ASSERT_EQ(stored->front().seq, static_cast<uint64_t>(i + 1));
    }
    // Generous deadline for a loaded machine; the syncer needs about `wal_sync_delay`.
    auto err = store->wait_for_wal_sync(std::chrono::seconds{10});
    EXPECT_FALSE(err) << describe(err);
    ASSERT_TRUE(store->put_server(make_server("s-1"), {make_event("connection_up")}, false));
    err = store->sync_wal();
    EXPECT_FALSE(err) << describe(err);
    EXPECT_FALSE(store->wait_for_wal_sync(std::chrono::milliseconds{0}))
        << "an explicit sync makes every earlier write durable";
  }
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->last_event_seq(), 201u);
  auto events = store->read_events(0, 1000);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 201u);
  for (size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].seq, i + 1);
}

TEST(wal_sync, a_synced_write_makes_earlier_unsynced_writes_durable_too) {
  store_dir tmp;
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put_server(make_server("s-1"), {make_event("connection_up")}, false));
  ASSERT_FALSE(store->put_inventory("s-1", "{}"));
  // A trust decision: synced, and the log is sequential, so everything before it is durable.
  ASSERT_TRUE(store->put_server(make_server("s-1"), {make_event("validated")}, true));
  EXPECT_FALSE(store->wait_for_wal_sync(std::chrono::milliseconds{0}));
}

TEST(wal_sync, events_become_durable_only_through_a_sync_and_the_listener_hears_each_advance) {
  store_dir tmp;
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  std::mutex m;
  std::condition_variable cv;
  std::vector<uint64_t> heard;
  store->on_events_durable([&](uint64_t seq) {
    std::lock_guard<std::mutex> lock(m);
    heard.push_back(seq);
    cv.notify_all();
  });
  // A synced write is durable when it returns; the listener is for the syncer's advances only.
  ASSERT_TRUE(store->put_server(make_server("s-1"), {make_event("validated")}, true));
  EXPECT_EQ(store->durable_event_seq(), 1u);
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(store->put_server(make_server("s-1"), {make_event("connection_up")}, false));
  EXPECT_LE(store->durable_event_seq(), store->last_event_seq());
  {
    std::unique_lock<std::mutex> lock(m);
    // Generous for a loaded machine; the syncer needs about `wal_sync_delay`.
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds{10},
                            [&] { return !heard.empty() && heard.back() == 51u; }));
    for (size_t i = 1; i < heard.size(); ++i) EXPECT_LT(heard[i - 1], heard[i]);
  }
  EXPECT_EQ(store->durable_event_seq(), 51u);
  store->on_events_durable({});
  ASSERT_TRUE(store->put_server(make_server("s-1"), {make_event("connection_down")}, false));
  ASSERT_FALSE(store->wait_for_wal_sync(std::chrono::seconds{10}));
  std::lock_guard<std::mutex> lock(m);
  EXPECT_EQ(heard.back(), 51u) << "a cleared listener is not called";
}

TEST(wal_sync, everything_stored_before_a_reopen_counts_as_durable) {
  store_dir tmp;
  {
    auto store = open_store(tmp.db());
    ASSERT_TRUE(store);
    for (int i = 0; i < 5; ++i)
      ASSERT_TRUE(store->put_server(make_server("s-1"), {make_event("connection_up")}, false));
  }
  auto store = open_store(tmp.db());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->last_event_seq(), 5u);
  EXPECT_EQ(store->durable_event_seq(), 5u);
}

// -- opening --------------------------------------------------------------------------------

TEST(state_store, a_database_with_a_newer_schema_is_refused_naming_both_versions) {
  store_dir tmp;
  { ASSERT_TRUE(open_store(tmp.db())); }
  auto put = ldb(tmp.db(), "--column_family=meta put store.schema_version 2");
  ASSERT_EQ(put.exit_code, 0) << put.output;
  auto store = state_store::open(tmp.db());
  ASSERT_FALSE(store);
  EXPECT_EQ(code_of(store.error()), ec::corrupt_data);
  auto text = describe(store.error());
  EXPECT_NE(text.find("schema version 2"), std::string::npos) << text;
  EXPECT_NE(text.find("schema version 1"), std::string::npos) << text;
  EXPECT_NE(text.find(tmp.db().string()), std::string::npos) << text;
}

TEST(state_store, a_second_open_of_an_open_database_fails_naming_the_directory) {
  store_dir tmp;
  auto first = open_store(tmp.db());
  ASSERT_TRUE(first);
  auto second = state_store::open(tmp.db());
  ASSERT_FALSE(second);
  EXPECT_EQ(code_of(second.error()), ec::storage_failure);
  auto text = describe(second.error());
  EXPECT_NE(text.find(tmp.db().string()), std::string::npos) << text;
  EXPECT_NE(text.find("already open"), std::string::npos) << text;
  EXPECT_TRUE(first->put_meta("still", "works") == caf::error{});
}

}  // namespace
}  // namespace certfleet
