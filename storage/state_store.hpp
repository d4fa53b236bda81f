// certfleet's durable state: one RocksDB database behind a small typed API. Nothing outside
// storage/ sees RocksDB.
//
// Column families: `servers` (server_record by id), `credentials` (sealed blobs by server id),
// `inventory` (latest collected inventory by server id), `events` (event_record by big-endian seq),
// `meta` (schema version, event counter).
//
// Durability: trust decisions, server records written with `sync`, credential writes and deletions
// and their events are fsynced before the call returns. Credentials never reach the write-ahead
// log; they are flushed straight to their own table file, and `erase_credential(s)` rewrites that
// column family so that after it returns no byte of any erased sealed blob remains in any file
// under the database directory (see docs/storage.md).
//
// Unsynced writes (`put_server(..., sync=false)`, which the server actors use for connectivity
// events, and inventory) reach the write-ahead log, i.e. the OS, before the call returns, so they
// survive a crash of the process; a background thread fsyncs the log at most `wal_sync_delay`
// later, so a power loss or kernel crash can lose only that window. Events stay gap-free even then:
// every event and the event counter go into the log in seq order, and a power loss can only cut
// a suffix of a sequential log, so what survives is a prefix of the events with the counter that
// matches it. Any later synced write also makes every earlier unsynced one durable. An event lost
// that way would have its seq reused after restart, so publishers stop at `durable_event_seq()`
// (docs/storage.md, "Durability").
//
// Errors: RocksDB statuses become `ec::storage_failure` (or `ec::disk_full` for no space), naming
// the operation and the database path; nothing is half-applied: each call is one atomic batch.
//
// Thread-safety: all member functions may be called concurrently. Event sequence numbers are
// assigned under an internal mutex so they are gap-free and monotonic. The store owns one
// background thread (the log syncer), joined by the destructor after a last fsync.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "crypto/sealing.hpp"
#include "storage/records.hpp"

namespace certfleet {

class state_store {
 public:
  /// The schema version this build writes; opening a newer database fails with `ec::corrupt_data`.
  static constexpr uint32_t schema_version = 1;

  /// How long an unsynced write may stay in the OS page cache before the log syncer fsyncs it.
  /// Short enough that a power cut loses at most a blink of connectivity events, long enough that
  /// a connect storm of thousands of events per second costs a few fsyncs, not thousands.
  static constexpr std::chrono::milliseconds wal_sync_delay{50};

  /// Opens (creating when missing) the database at `dir`.
  static caf::expected<std::unique_ptr<state_store>> open(const std::filesystem::path& dir);

  ~state_store();
  state_store(const state_store&) = delete;
  state_store& operator=(const state_store&) = delete;

  // -- servers ------------------------------------------------------------------------------
  /// Writes `r` and appends `events` (their seq and, when 0, time are assigned) in one atomic
  /// batch. Returns the events as stored. `sync` makes it durable before returning; without it
  /// the write survives a process crash at once and a power loss after `wal_sync_delay` (see the
  /// file comment), events included. Trust decisions must pass `sync = true`.
  caf::expected<std::vector<event_record>> put_server(const server_record& r,
                                                      std::vector<event_record> events, bool sync);
  /// Writes every record of `records` (new or changed) and appends `events` in one atomic batch,
  /// durable (fsynced) before returning. On failure nothing was written.
  caf::expected<std::vector<event_record>> put_servers(const std::vector<server_record>& records,
                                                       std::vector<event_record> events);
  caf::expected<std::optional<server_record>> get_server(const std::string& id) const;
  /// Removes the record, its inventory and its credentials (securely), appending `events`.
  caf::expected<std::vector<event_record>> remove_server(const std::string& id,
                                                         std::vector<event_record> events);
  /// Calls `fn` for every server record in id order; stops early when `fn` returns false.
  caf::error for_each_server(const std::function<bool(const server_record&)>& fn) const;
  size_t server_count() const;

  // -- credentials (sealed) -----------------------------------------------------------------
  /// Stores a sealed credential for `server_id`, durable before returning.
  caf::error put_credential(const std::string& server_id, const sealed_blob& blob);
  /// Stores sealed credentials (server id, blob) for many servers with one batch and one flush,
  /// durable before returning; all or none are written. Replaced blobs are scrubbed as by
  /// `put_credential`. Duplicate ids: the last one wins.
  caf::error put_credentials(const std::vector<std::pair<std::string, sealed_blob>>& credentials);
  caf::expected<std::optional<sealed_blob>> get_credential(const std::string& server_id) const;
  /// Deletes the credential unrecoverably (see the file comment), appending `events` durably.
  caf::expected<std::vector<event_record>> erase_credential(const std::string& server_id,
                                                            std::vector<event_record> events);
  /// Deletes the credentials of every id in `server_ids` unrecoverably with one tombstone batch and
  /// one scrub (the same guarantee as `erase_credential`, for each id), then appends `events`
  /// durably. Events are written only after the scrub succeeded; on failure no event was written
  /// and the call may be repeated with the same arguments (ids already gone are no-ops).
  caf::expected<std::vector<event_record>> erase_credentials(
      const std::vector<std::string>& server_ids, std::vector<event_record> events);
  std::vector<std::string> credential_ids() const;

  // -- inventory ----------------------------------------------------------------------------
  caf::error put_inventory(const std::string& server_id, const std::string& json);
  caf::expected<std::optional<std::string>> get_inventory(const std::string& server_id) const;

  // -- events -------------------------------------------------------------------------------
  /// Appends events without a server change.
  caf::expected<std::vector<event_record>> append_events(std::vector<event_record> events);
  /// Events with seq > `since`, oldest first, at most `limit`.
  caf::expected<std::vector<event_record>> read_events(uint64_t since, size_t limit) const;
  /// The highest assigned seq (0 when none).
  uint64_t last_event_seq() const;
  /// The lowest seq still kept (1 when nothing was trimmed yet).
  uint64_t first_event_seq() const;
  /// Deletes events older than `min_time_ms` (0: no age limit), then the oldest connectivity
  /// events (`connection_up`, `connection_down`) until at most `keep` events remain. Trust events
  /// (every other type) are removed by age only, so more than `keep` may remain, and seqs have
  /// holes where connectivity events were removed (docs/storage.md, "Retention").
  caf::error trim_events(size_t keep, int64_t min_time_ms);

  // -- meta ---------------------------------------------------------------------------------
  caf::expected<std::optional<std::string>> get_meta(const std::string& key) const;
  caf::error put_meta(const std::string& key, const std::string& value);
  /// Writes `value` under `key` and appends `events` in one atomic batch, durable (fsynced) before
  /// returning; returns the events as stored. The same reserved prefix is refused as by `put_meta`.
  caf::expected<std::vector<event_record>> put_meta(const std::string& key,
                                                    const std::string& value,
                                                    std::vector<event_record> events);
  /// The id of the master key the stored credentials are sealed under (`master_key::id()`), if
  /// recorded (storage/master_key_guard.hpp keeps it).
  caf::expected<std::optional<std::string>> master_key_id() const;
  /// Records `id` durably; an empty `id` removes the record.
  caf::error put_master_key_id(const std::string& id);

  // -- durability ---------------------------------------------------------------------------
  /// Fsyncs the write-ahead log now, making every write that returned before this call durable.
  /// The log syncer does this on its own; call it to not wait (before a planned power cut, say).
  caf::error sync_wal();
  /// Blocks until every write that returned before this call has been fsynced by the log syncer
  /// (or by a later synced write), or `timeout` passed: `ec::timeout`. A failed background fsync
  /// is reported here (the syncer keeps retrying).
  caf::error wait_for_wal_sync(std::chrono::milliseconds timeout);
  /// The highest event seq known to be fsynced; never above `last_event_seq()`. Events above it
  /// may still be lost to a power cut (their seq then reused), so publishers stop at it.
  uint64_t durable_event_seq() const;
  /// Calls `fn(durable_event_seq())` from the log syncer's thread whenever a background fsync made
  /// more events durable. Pass an empty function to stop; that call waits for a running `fn`.
  void on_events_durable(std::function<void(uint64_t)> fn);

  const std::filesystem::path& dir() const;

  struct impl;

 private:
  explicit state_store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace certfleet
