// certfleet's durable state: one RocksDB database behind a small typed API. Nothing outside
// storage/ sees RocksDB.
//
// Column families: `servers` (server_record by id), `credentials` (sealed blobs by server id),
// `inventory` (latest collected inventory by server id), `events` (event_record by big-endian seq),
// `meta` (schema version, event counter).
//
// Durability: trust decisions, server records written with `sync`, credential writes and deletions
// and every event are fsynced before the call returns. Credentials never reach the write-ahead log;
// they are flushed straight to their own table file, and `erase_credential` rewrites that column
// family so that after it returns no byte of the sealed blob remains in any file under the
// database directory (see docs/storage.md).
//
// Errors: RocksDB statuses become `ec::storage_failure` (or `ec::disk_full` for no space), naming
// the operation and the database path; nothing is half-applied: each call is one atomic batch.
//
// Thread-safety: all member functions may be called concurrently. Event sequence numbers are
// assigned under an internal mutex so they are gap-free and monotonic.
#pragma once

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

  /// Opens (creating when missing) the database at `dir`.
  static caf::expected<std::unique_ptr<state_store>> open(const std::filesystem::path& dir);

  ~state_store();
  state_store(const state_store&) = delete;
  state_store& operator=(const state_store&) = delete;

  // -- servers ------------------------------------------------------------------------------
  /// Writes `r` and appends `events` (their seq and, when 0, time are assigned) in one atomic
  /// batch. Returns the events as stored. `sync` makes it durable before returning.
  caf::expected<std::vector<event_record>> put_server(const server_record& r,
                                                      std::vector<event_record> events, bool sync);
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
  caf::expected<std::optional<sealed_blob>> get_credential(const std::string& server_id) const;
  /// Deletes the credential unrecoverably (see the file comment), appending `events` durably.
  caf::expected<std::vector<event_record>> erase_credential(const std::string& server_id,
                                                            std::vector<event_record> events);
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
  /// Deletes events so that at most `keep` remain and none older than `min_time_ms` (0: no age).
  caf::error trim_events(size_t keep, int64_t min_time_ms);

  // -- meta ---------------------------------------------------------------------------------
  caf::expected<std::optional<std::string>> get_meta(const std::string& key) const;
  caf::error put_meta(const std::string& key, const std::string& value);

  const std::filesystem::path& dir() const;

  struct impl;

 private:
  explicit state_store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace certfleet
