// Credential writes and their unrecoverable erasure (see "Erasing credentials" in
// docs/storage.md), and the bounds that keep RocksDB's files from piling up ("Files under churn").
#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>
#include <unordered_map>

#include "storage/state_store_impl.hpp"

namespace certfleet {

using namespace storage_detail;

namespace {

namespace fs = std::filesystem;

// How long erasure waits for a concurrent RocksDB job to release the table files that held a
// credential before reporting failure. Such jobs finish in milliseconds on a healthy disk.
constexpr auto obsolete_file_deadline = std::chrono::seconds(10);

// Every credential write flushes the credentials family, and each flush starts a new write-ahead
// log; the old logs stay as long as another family's unflushed data lives in them, which for the
// quiet families (servers, events) is until their memtable fills: hundreds of tiny logs per hour
// of churn. Once more logs than this are live, every family is flushed, which frees all but the
// newest.
constexpr size_t max_live_logs = 8;

// Those flushes make small table files, and with keys that only grow (event seqs) RocksDB moves
// them down the levels without merging them: the count would grow with every flush. Once a family
// has more table files than this, the key range its small files cover is compacted into one file;
// for the events family that is only the newest events, so the cost stays small.
constexpr size_t max_table_files_per_family = 6;
constexpr uint64_t small_table_file_bytes = 4 << 20;

}  // namespace

std::set<std::string> state_store::impl::credential_table_files() const {
  std::vector<rocksdb::LiveFileMetaData> live;
  db->GetLiveFilesMetaData(&live);
  std::set<std::string> out;
  for (const auto& f : live)
    if (f.column_family_name == cf_credentials) out.insert(f.directory + "/" + f.relative_filename);
  return out;
}

caf::error state_store::impl::scrub_credentials(const std::string& op) {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  fo.allow_write_stall = true;
  auto s = note(db->Flush(fo, credentials));
  if (!s.ok()) return fail(s, op + " (flush credentials)");
  auto old_files = credential_table_files();
  rocksdb::CompactRangeOptions cro;
  cro.exclusive_manual_compaction = true;
  cro.allow_write_stall = true;
  cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  s = note(db->CompactRange(cro, credentials, nullptr, nullptr));
  if (!s.ok()) return fail(s, op + " (compact credentials)");
  auto live_now = credential_table_files();
  std::vector<std::string> pending;
  for (const auto& f : old_files)
    if (live_now.count(f) == 0) pending.push_back(f);
  auto deadline = std::chrono::steady_clock::now() + obsolete_file_deadline;
  for (;;) {
    // Re-enabling deletions runs a full scan for obsolete files and deletes them in this thread;
    // it also catches files a background job made obsolete but had not yet unlinked.
    s = db->DisableFileDeletions();
    if (s.ok()) s = db->EnableFileDeletions(/*force=*/false);
    if (!s.ok()) return fail(s, op + " (delete obsolete credential files)");
    pending.erase(std::remove_if(pending.begin(), pending.end(),
                                 [](const std::string& f) {
                                   std::error_code ec_ignored;
                                   return !fs::exists(f, ec_ignored);
                                 }),
                  pending.end());
    if (pending.empty()) {
      scrub_pending = false;
      return {};
    }
    if (std::chrono::steady_clock::now() > deadline)
      return make_error(ec::storage_failure,
                        "could not " + op + " in database " + dir_text + ": table file " +
                            pending.front() +
                            " that held a deleted credential was not removed; stop certfleet "
                            "and restart it, which finishes the erasure");
    // Another RocksDB job still protects the file; it finishes in milliseconds.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

caf::error state_store::impl::write_credential_batch(rocksdb::WriteBatch& batch,
                                                     const std::string& op) {
  // Credentials never enter the write-ahead log (it is not rewritten on deletion, so the blob
  // would outlive `erase_credential` there); a synchronous flush makes them durable instead.
  rocksdb::WriteOptions w;
  w.disableWAL = true;
  auto s = ready_for_writes();
  if (s.ok()) s = note(db->Write(w, &batch));
  if (!s.ok()) return fail(s, op);
  rocksdb::FlushOptions fo;
  fo.wait = true;
  fo.allow_write_stall = true;
  s = note(db->Flush(fo, credentials));
  if (!s.ok()) return fail(s, op + " (flush credentials)");
  return bound_live_logs(op);
}

caf::error state_store::impl::bound_live_logs(const std::string& op) {
  rocksdb::VectorLogPtr logs;
  auto s = db->GetSortedWalFiles(logs);
  if (!s.ok() || logs.size() <= max_live_logs) return {};
  rocksdb::FlushOptions fo;
  fo.wait = true;
  fo.allow_write_stall = true;
  s = note(db->Flush(fo, handles));
  if (!s.ok()) return fail(s, op + " (flush every family to retire old logs)");
  return bound_table_files(op);
}

caf::error state_store::impl::bound_table_files(const std::string& op) {
  std::vector<rocksdb::LiveFileMetaData> live;
  db->GetLiveFilesMetaData(&live);
  for (auto* h : handles) {
    if (h == credentials) continue;
    size_t count = 0;
    std::optional<std::string> begin;
    for (const auto& f : live) {
      if (f.column_family_name != h->GetName()) continue;
      ++count;
      if (f.size < small_table_file_bytes && (!begin || f.smallestkey < *begin))
        begin = f.smallestkey;
    }
    if (count <= max_table_files_per_family || !begin) continue;
    rocksdb::CompactRangeOptions cro;
    cro.allow_write_stall = true;
    cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    rocksdb::Slice from(*begin);
    auto s = note(db->CompactRange(cro, h, &from, nullptr));
    if (!s.ok()) return fail(s, op + " (compact the " + h->GetName() + " family)");
  }
  return {};
}

caf::error state_store::impl::erase_credential_locked(const std::string& server_id,
                                                      const std::string& op) {
  return erase_credentials_locked({server_id}, op);
}

caf::error state_store::impl::erase_credentials_locked(const std::vector<std::string>& ids,
                                                       const std::string& op) {
  rocksdb::WriteBatch batch;
  for (const auto& id : ids) batch.Delete(credentials, id);
  if (auto err = write_credential_batch(batch, op)) return err;
  return scrub_credentials(op);
}

caf::error state_store::impl::put_credentials(
    const std::vector<std::pair<std::string, sealed_blob>>& creds, const std::string& op) {
  if (creds.empty()) return {};
  // Last one wins, and an earlier duplicate is never written at all: it cannot linger anywhere.
  std::unordered_map<std::string, size_t> last;
  for (size_t i = 0; i < creds.size(); ++i) last[creds[i].first] = i;
  std::unique_lock<std::shared_mutex> lock(credential_mutex);
  rocksdb::WriteBatch batch;
  bool replaced = false;
  std::string old;
  for (size_t i = 0; i < creds.size(); ++i) {
    const auto& [id, blob] = creds[i];
    if (last[id] != i) continue;
    auto existing = db->Get(rocksdb::ReadOptions(), credentials, id, &old);
    if (!existing.ok() && !existing.IsNotFound()) return fail(existing, op);
    if (existing.ok() &&
        (old.size() != blob.bytes.size() ||
         !std::equal(old.begin(), old.end(), blob.bytes.begin(),
                     [](char a, uint8_t b) { return static_cast<uint8_t>(a) == b; })))
      replaced = true;
    batch.Put(credentials, id, as_slice(blob.bytes));
  }
  if (auto err = write_credential_batch(batch, op)) return err;
  // A replaced credential is as secret as an erased one.
  if (replaced || scrub_pending) return scrub_credentials(op);
  return {};
}

}  // namespace certfleet
