// RocksDB's info log, routed into certfleet's own log (spdlog) instead of a LOG file in the
// database directory. Internal to storage/.
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

namespace certfleet::storage_detail {

/// A logger for `DBOptions::info_log`.
std::shared_ptr<rocksdb::Logger> make_info_logger();

}  // namespace certfleet::storage_detail
