// The write path through the write-ahead log and the log syncer (see "Durability" in
// docs/storage.md), and recovery after a failed write (see "A full disk").
#include <chrono>
#include <exception>

#include "storage/state_store_impl.hpp"

namespace certfleet {
namespace {

// How often the log syncer retries after a failed fsync (a full disk: each retry first asks
// RocksDB to resume, which tries to flush). Writes retry on their own, at once.
constexpr auto failed_sync_retry = std::chrono::seconds(1);

}  // namespace

uint64_t state_store::impl::log_mark() {
  std::lock_guard<std::mutex> lock(sync_mutex);
  return logged;
}

void state_store::impl::mark_durable(uint64_t mark) {
  {
    std::lock_guard<std::mutex> lock(sync_mutex);
    if (mark <= durable) return;
    durable = mark;
  }
  synced.notify_all();
}

void state_store::impl::mark_logged() {
  {
    std::lock_guard<std::mutex> lock(sync_mutex);
    ++logged;
  }
  wake_syncer.notify_one();
}

rocksdb::Status state_store::impl::note(rocksdb::Status s) {
  if (s.ok() || s.IsNotFound() || s.IsBusy() || s.IsTryAgain()) return s;
  std::lock_guard<std::mutex> lock(failure_mutex);
  last_write_failure = s;
  write_failed.store(true);
  return s;
}

rocksdb::Status state_store::impl::ready_for_writes() {
  if (!write_failed.load()) return rocksdb::Status::OK();
  auto s = db->Resume();
  std::lock_guard<std::mutex> lock(failure_mutex);
  if (s.ok()) {
    write_failed.store(false);
    last_write_failure = rocksdb::Status::OK();
    return s;
  }
  // Busy: RocksDB's own recovery is running (it waits for free space); it has not succeeded yet.
  return last_write_failure.ok() ? s : last_write_failure;
}

rocksdb::Status state_store::impl::write_logged(rocksdb::WriteBatch& batch, bool sync) {
  std::shared_lock<std::shared_mutex> guard(wal_guard);
  auto ready = ready_for_writes();
  if (!ready.ok()) return ready;
  auto mark = sync ? log_mark() : 0;
  auto s = note(db->Write(wal_options(sync), &batch));
  if (!s.ok()) return s;
  if (sync)
    mark_durable(mark);
  else
    mark_logged();
  return s;
}

caf::error state_store::impl::sync_now(const std::string& op) {
  auto mark = log_mark();
  // Every event up to `seq` was written (commit_seq runs after the write returned), so it is in
  // the log before the fsync below.
  auto seq = last_seq_view.load();
  rocksdb::Status s;
  {
    std::unique_lock<std::shared_mutex> guard(wal_guard);
    s = ready_for_writes();
    if (s.ok()) s = note(db->SyncWAL());
  }
  if (!s.ok()) return fail(s, op);
  mark_durable(mark);
  if (raise_durable_seq(seq)) {
    std::lock_guard<std::mutex> lock(listener_mutex);
    if (durable_listener) durable_listener(durable_seq_view.load());
  }
  return {};
}

void state_store::impl::run_syncer() {
  std::unique_lock<std::mutex> lock(sync_mutex);
  for (;;) {
    wake_syncer.wait(lock, [this] { return stop_syncer || logged > durable; });
    if (stop_syncer) return;
    // Lets a burst of writes gather so that one fsync covers all of them.
    if (wake_syncer.wait_for(lock, state_store::wal_sync_delay, [this] { return stop_syncer; }))
      return;                         // the destructor syncs after joining
    if (logged <= durable) continue;  // a synced write covered them meanwhile
    lock.unlock();
    caf::error err;
    try {
      err = sync_now("fsync the write-ahead log");
    } catch (const std::exception& e) {
      err = fail_exception("fsync the write-ahead log", e);
    }
    lock.lock();
    if (err) {
      sync_error = std::move(err);
      synced.notify_all();
      // Retry after a pause rather than spinning on a failing disk.
      if (wake_syncer.wait_for(lock, failed_sync_retry, [this] { return stop_syncer; })) return;
    } else {
      sync_error = caf::error{};
    }
  }
}

bool state_store::impl::raise_durable_seq(uint64_t seq) {
  uint64_t seen = durable_seq_view.load();
  while (seq > seen)
    if (durable_seq_view.compare_exchange_weak(seen, seq)) return true;
  return false;
}

}  // namespace certfleet
