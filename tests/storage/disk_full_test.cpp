// The store on a full file system: a real tmpfs, filled to the last block.
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "storage/agent_store.hpp"
#include "storage/state_store.hpp"
#include "tests/storage/tmpfs.hpp"

namespace certfleet {
namespace {

namespace fs = std::filesystem;

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

event_record make_event(const std::string& type, const std::string& server_id) {
  event_record e;
  e.type = type;
  e.server_id = server_id;
  e.address = "10.0.0.1:9401";
  e.details = "{}";
  return e;
}

sealed_blob make_blob(uint8_t fill) {
  sealed_blob b;
  b.bytes.assign(64, fill);
  return b;
}

#define REQUIRE_TMPFS(m) \
  if (!(m).mounted()) GTEST_SKIP() << (m).why_not()

TEST(disk_full, writes_are_refused_naming_the_path_reads_still_work_and_writing_resumes) {
  test::tmpfs_mount disk("4m");
  REQUIRE_TMPFS(disk);
  auto db_dir = disk.path() / "db";
  auto opened = state_store::open(db_dir);
  ASSERT_TRUE(opened) << describe(opened.error());
  auto& store = **opened;
  ASSERT_TRUE(store.put_server(make_server("s-1"), {make_event("server_added", "s-1")}, true));
  ASSERT_FALSE(store.put_credential("s-1", make_blob(1)));

  disk.fill();
  // Unsynced writes first, so that the log syncer meets the full disk too.
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    auto id = "u-" + std::to_string(i);
    auto r = store.put_server(make_server(id), {make_event("connection_up", id)}, false);
    if (!r) {
      EXPECT_EQ(code_of(r.error()), ec::disk_full) << describe(r.error());
      refused = true;
    }
  }
  ASSERT_TRUE(refused);
  // The log syncer meets the failed log (an fsync of it would abort inside RocksDB): it either
  // reports the full disk or finds the earlier writes already made durable by a recovery.
  auto sync_err = store.wait_for_wal_sync(std::chrono::seconds(5));
  EXPECT_TRUE(!sync_err || code_of(sync_err) == ec::disk_full) << describe(sync_err);
  auto synced = store.put_server(make_server("s-2"), {make_event("server_added", "s-2")}, true);
  ASSERT_FALSE(synced);
  EXPECT_EQ(code_of(synced.error()), ec::disk_full);
  auto text = describe(synced.error());
  EXPECT_NE(text.find(db_dir.string()), std::string::npos) << text;
  EXPECT_NE(text.find(" free"), std::string::npos) << text;
  EXPECT_EQ(code_of(store.put_credential("s-2", make_blob(2))), ec::disk_full);
  auto removed = store.remove_server("s-1", {make_event("server_removed", "s-1")});
  ASSERT_FALSE(removed);
  EXPECT_EQ(code_of(removed.error()), ec::disk_full);
  EXPECT_EQ(code_of(store.sync_wal()), ec::disk_full);

  // Reads are served meanwhile, and show exactly what was written before.
  auto got = store.get_server("s-1");
  ASSERT_TRUE(got) << describe(got.error());
  EXPECT_TRUE(got->has_value());
  auto cred = store.get_credential("s-1");
  ASSERT_TRUE(cred && cred->has_value());
  EXPECT_EQ((*cred)->bytes, make_blob(1).bytes);
  auto events_before = store.read_events(0, 1000);
  ASSERT_TRUE(events_before);

  disk.release();
  // No waiting: the next write resumes the database itself.
  auto again = store.put_server(make_server("s-3"), {make_event("server_added", "s-3")}, true);
  ASSERT_TRUE(again) << describe(again.error());
  EXPECT_EQ(again->front().seq, events_before->back().seq + 1) << "no seq lost or reused";
  EXPECT_FALSE(store.sync_wal());
  EXPECT_FALSE(store.put_credential("s-3", make_blob(3)));
  auto erased = store.remove_server("s-1", {make_event("server_removed", "s-1")});
  EXPECT_TRUE(erased) << describe(erased.error());
  auto last = store.last_event_seq();
  opened->reset();

  auto reopened = state_store::open(db_dir);
  ASSERT_TRUE(reopened) << describe(reopened.error());
  EXPECT_EQ((*reopened)->last_event_seq(), last);
  auto s3 = (*reopened)->get_credential("s-3");
  ASSERT_TRUE(s3 && s3->has_value());
  auto s1 = (*reopened)->get_server("s-1");
  ASSERT_TRUE(s1);
  EXPECT_FALSE(s1->has_value());
}

TEST(disk_full, a_store_opened_on_a_full_disk_serves_reads_or_says_the_disk_is_full) {
  test::tmpfs_mount disk("4m");
  REQUIRE_TMPFS(disk);
  auto db_dir = disk.path() / "db";
  {
    auto opened = state_store::open(db_dir);
    ASSERT_TRUE(opened) << describe(opened.error());
    ASSERT_TRUE(
        (*opened)->put_server(make_server("s-1"), {make_event("server_added", "s-1")}, false));
    ASSERT_FALSE((*opened)->put_credential("s-1", make_blob(1)));
  }
  disk.fill();
  {
    auto opened = state_store::open(db_dir);
    if (!opened) {
      EXPECT_EQ(code_of(opened.error()), ec::disk_full) << describe(opened.error());
      EXPECT_NE(describe(opened.error()).find(db_dir.string()), std::string::npos);
    } else {
      auto got = (*opened)->get_server("s-1");
      ASSERT_TRUE(got) << describe(got.error());
      EXPECT_TRUE(got->has_value());
      auto w = (*opened)->put_server(make_server("s-2"), {}, true);
      EXPECT_FALSE(w);
    }
  }
  disk.release();
  auto opened = state_store::open(db_dir);
  ASSERT_TRUE(opened) << describe(opened.error());
  auto got = (*opened)->get_server("s-1");
  ASSERT_TRUE(got && got->has_value());
  EXPECT_TRUE((*opened)->put_server(make_server("s-2"), {}, true));
}

TEST(disk_full, the_agent_store_refuses_writes_keeps_reads_and_resumes_when_space_returns) {
  test::tmpfs_mount disk("4m");
  REQUIRE_TMPFS(disk);
  auto opened = agent_store::open(disk.path() / "agent.db", false);
  ASSERT_TRUE(opened) << describe(opened.error());
  auto& store = **opened;
  ASSERT_FALSE(store.put_meta("kind", "single"));
  disk.fill();
  caf::error err;
  std::string big(64 * 1024, 'x');
  for (int i = 0; i < 100 && !err; ++i) err = store.put_meta("k" + std::to_string(i), big);
  ASSERT_TRUE(err);
  EXPECT_EQ(code_of(err), ec::disk_full) << describe(err);
  auto kind = store.get_meta("kind");
  ASSERT_TRUE(kind && *kind);
  EXPECT_EQ(**kind, "single");
  disk.release();
  EXPECT_FALSE(store.put_meta("after", "space returned"));
}

}  // namespace
}  // namespace certfleet
