// The state store's insides, shared by the files that implement it: state_store.cpp (the public
// API, opening, events and servers), wal_syncer.cpp (writes through the write-ahead log, its
// background fsync, recovery after a failed write) and credential_scrub.cpp (credential writes,
// their unrecoverable erasure, and the bounds on RocksDB's files). Internal to storage/.
//
// Thread-safety: as described on each member; see storage/state_store.hpp for the whole.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "storage/state_store.hpp"

namespace certfleet {
namespace storage_detail {

// Column family names.
inline const std::string cf_servers = "servers";
inline const std::string cf_credentials = "credentials";
inline const std::string cf_inventory = "inventory";
inline const std::string cf_events = "events";
inline const std::string cf_meta = "meta";

inline rocksdb::Slice as_slice(const std::vector<uint8_t>& v) {
  return rocksdb::Slice(reinterpret_cast<const char*>(v.data()), v.size());
}

}  // namespace storage_detail

struct state_store::impl {
  std::filesystem::path dir;
  std::string dir_text;
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* servers = nullptr;
  rocksdb::ColumnFamilyHandle* credentials = nullptr;
  rocksdb::ColumnFamilyHandle* inventory = nullptr;
  rocksdb::ColumnFamilyHandle* events = nullptr;
  rocksdb::ColumnFamilyHandle* meta = nullptr;

  // Serialises every write that assigns event seqs or changes the server count, so seqs are
  // written in order and the count stays exact. Guards `last_seq` and `first_seq`; the atomics
  // mirror them for lock-free readers.
  std::mutex write_mutex;
  uint64_t last_seq = 0;
  uint64_t first_seq = 1;
  // Retention (trim_events): every connectivity event below `connectivity_trim_seq` is deleted;
  // `trust_events_below` trust events are still kept below it. Guarded like `first_seq`.
  uint64_t connectivity_trim_seq = 1;
  uint64_t trust_events_below = 0;
  std::atomic<uint64_t> last_seq_view{0};
  // The highest seq known to be fsynced, and who wants to hear when it grows (the event bus).
  std::atomic<uint64_t> durable_seq_view{0};
  std::mutex listener_mutex;
  std::function<void(uint64_t)> durable_listener;
  std::atomic<uint64_t> first_seq_view{1};
  std::atomic<size_t> server_count{0};

  // Credential writes take it exclusively: erasure must be sure no reader pins an old table file.
  // Lock order: credential_mutex before write_mutex.
  mutable std::shared_mutex credential_mutex;

  // The log syncer. `logged` counts unsynced WAL writes that have returned; `durable` is how many
  // of them are known to be fsynced. Counting returned writes is what makes a synced write's mark
  // sound: every write counted before it started is earlier in the (sequential) log, so its fsync
  // covers them too. Never held while calling RocksDB.
  std::mutex sync_mutex;
  std::condition_variable wake_syncer;
  std::condition_variable synced;
  uint64_t logged = 0;
  uint64_t durable = 0;
  bool stop_syncer = false;
  caf::error sync_error;  // the last background fsync failure, cleared by a success
  std::thread syncer;

  // Set when a write, flush or compaction failed (a full disk, typically). RocksDB then refuses
  // writes until it has recovered, and fsyncing a log file whose append failed would abort the
  // process (docs/platform.md), so nothing calls SyncWAL while it is set; the next write or fsync
  // asks RocksDB to resume first, which clears it once space is back. `last_write_failure` is the
  // status that set it, reported while RocksDB's own recovery is still running.
  std::atomic<bool> write_failed{false};
  std::mutex failure_mutex;
  rocksdb::Status last_write_failure;
  // Log writers hold it shared, SyncWAL exclusively: no fsync can start between an append that
  // failed and `write_failed` being set.
  std::shared_mutex wal_guard;
  // The scrub that `open` runs could not finish (a full disk); the next credential write runs it.
  bool scrub_pending = false;  // guarded by credential_mutex

  ~impl();

  // -- the write-ahead log and the log syncer (wal_syncer.cpp) ---------------------------------
  uint64_t log_mark();
  void mark_durable(uint64_t mark);
  void mark_logged();
  /// Records a failed write (see `write_failed`) and returns `s`.
  rocksdb::Status note(rocksdb::Status s);
  /// OK when writes may go ahead: no write failed, or RocksDB has recovered from it (Resume()
  /// flushes what the memtables hold and starts a fresh log). Otherwise the failure that stopped
  /// writes, so a full disk keeps being reported as one until space is back.
  rocksdb::Status ready_for_writes();
  /// Writes `batch` through the WAL; `sync` fsyncs it (and everything logged before) first.
  rocksdb::Status write_logged(rocksdb::WriteBatch& batch, bool sync);
  /// Fsyncs the log now (taking `wal_guard` exclusively) and raises the durable seq.
  caf::error sync_now(const std::string& op);
  /// The log syncer's thread body; returns once `stop_syncer` is set.
  void run_syncer();
  /// Returns true when `seq` advanced the durable seq.
  bool raise_durable_seq(uint64_t seq);

  // -- errors, events and loading (state_store.cpp) --------------------------------------------
  caf::error fail(const rocksdb::Status& s, const std::string& op) const;
  caf::error fail_exception(const std::string& op, const std::exception& e) const;
  caf::error corrupt(const std::string& what, const caf::error& err) const;
  rocksdb::WriteOptions wal_options(bool sync) const;
  // Assigns seqs (and missing times) to `evs` and adds them plus the counter to `batch`. The
  // caller holds `write_mutex` and calls `commit_seq` only after the batch was written.
  uint64_t stage_events(rocksdb::WriteBatch& batch, std::vector<event_record>& evs);
  void commit_seq(uint64_t seq, bool synced);
  caf::expected<std::vector<event_record>> write_events(std::vector<event_record> evs,
                                                        const std::string& op);
  caf::error load_state();

  // -- credentials and file bounds (credential_scrub.cpp) --------------------------------------
  std::set<std::string> credential_table_files() const;
  // Makes every value deleted from (or overwritten in) the credentials family physically gone:
  // flushes its memtable (tombstones included), rewrites the whole family down to the bottommost
  // level, where tombstones and the values they shadow are both dropped, and waits until the table
  // files that held them are unlinked. The caller holds `credential_mutex` exclusively, so no
  // reader pins an old version of the family. See docs/storage.md.
  caf::error scrub_credentials(const std::string& op);
  caf::error write_credential_batch(rocksdb::WriteBatch& batch, const std::string& op);
  // Flushes every family once too many write-ahead logs are live (credential_scrub.cpp says why).
  caf::error bound_live_logs(const std::string& op);
  // Merges a family's small table files once it has too many (credential_scrub.cpp says why). The
  // credentials family is left out: every erasure rewrites it whole.
  caf::error bound_table_files(const std::string& op);
  caf::error erase_credential_locked(const std::string& server_id, const std::string& op);
  // The caller holds `credential_mutex` exclusively.
  caf::error erase_credentials_locked(const std::vector<std::string>& ids, const std::string& op);
  caf::error put_credentials(const std::vector<std::pair<std::string, sealed_blob>>& creds,
                             const std::string& op);
};

}  // namespace certfleet
