// RocksDB hooks shared by certfleet's stores. Internal to storage/.
//
// The info log, routed into certfleet's own log (spdlog) instead of a LOG file in the database
// directory.
//
// Why: RocksDB's file logger aborts the process (a debug assertion that Debian's build keeps) on
// the second write after one that failed, which a full disk makes the common case; and its LOG and
// LOG.old.* files grow and pile up beside the data. This logger never fails and writes no file.
// RocksDB's INFO and HEADER lines become debug messages (they are many: option dumps, compaction
// summaries), WARN becomes warn, ERROR and FATAL become error, each prefixed "rocksdb: ".
//
// Thread-safety: RocksDB calls it from any of its threads; spdlog's sinks are thread-safe.
#pragma once

#include <memory>

#include <rocksdb/env.h>
#include <rocksdb/listener.h>

namespace certfleet::storage_detail {

/// A logger for `DBOptions::info_log`.
std::shared_ptr<rocksdb::Logger> make_info_logger();

/// True for RocksDB's "no space" status, however it is spelled.
bool is_no_space(const rocksdb::Status& s);

/// A listener for `DBOptions::listeners` that turns off RocksDB's own recovery from a full disk.
/// That recovery waits until the free space exceeds a reserve of one memtable (64 MiB by default),
/// which a small file system never reaches, and makes `DB::Resume()` answer "busy" meanwhile; with
/// this listener the store calls `Resume()` itself before its next write, which succeeds as soon
/// as any space is back (docs/platform.md).
std::shared_ptr<rocksdb::EventListener> make_manual_resume_listener();

}  // namespace certfleet::storage_detail
