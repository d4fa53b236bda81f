// Private to storage/: the check both stores run before RocksDB may write to a database directory,
// so that a damaged database is refused, naming the damaged file, with nothing changed.
//
// RocksDB, asked to open a damaged database, may already have written before it notices: a new
// MANIFEST, OPTIONS and table files from the write-ahead log, old logs deleted; with
// `create_if_missing` and no CURRENT file it starts a new, empty database next to the old files. A
// damaged table block is only found when it is read, after that. So the directory is first opened
// read-only (which writes nothing) and every table block's checksum verified (docs/storage.md,
// "Damaged files").
//
// Thread-safety: free functions without shared state.
#pragma once

#include <filesystem>
#include <string>

#include <rocksdb/options.h>
#include <rocksdb/status.h>

#include "common/error.hpp"

namespace certfleet::storage_detail {

/// Checks the RocksDB database in `dir` without writing to it: a directory without RocksDB files is
/// fine (a new database); RocksDB files without a readable CURRENT, a MANIFEST, table file or
/// write-ahead log record that fails its checksum, or a table file that is missing or cut short
/// give `ec::corrupt_data` naming the file and the cause (`describe_damage`). A write-ahead log
/// that ends inside a record is accepted (what a power loss leaves; the record was never
/// acknowledged). `what` names the database for a person ("database", "agent database").
/// Other failures (permissions, a held lock are not checked here) give `ec::storage_failure`.
caf::error check_before_open(const rocksdb::DBOptions& options, const std::filesystem::path& dir,
                             const std::string& what);

/// The error for a RocksDB status that reports damage found while opening `dir`: `ec::corrupt_data`
/// naming the file the status points at (or the directory when it names none) and the cause, with
/// what to do.
caf::error describe_damage(const rocksdb::Status& s, const std::filesystem::path& dir,
                           const std::string& what);

}  // namespace certfleet::storage_detail
