#include "storage/damage_check.hpp"

#include <cstdarg>
#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <rocksdb/db.h>
#include <rocksdb/env.h>

namespace certfleet::storage_detail {
namespace {

namespace fs = std::filesystem;

// Keeps RocksDB's warnings of the read-only check: it names the write-ahead log a damaged record
// is in only there, not in the status it returns.
class warning_recorder final : public rocksdb::Logger {
 public:
  warning_recorder() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}

  using rocksdb::Logger::Logv;

  void Logv(const char*, va_list) override {}

  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < rocksdb::InfoLogLevel::WARN_LEVEL) return;
    char buf[1024];
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(buf, sizeof buf, format, copy);
    va_end(copy);
    if (n < 0) return;
    std::lock_guard<std::mutex> lock(mutex_);
    lines_.emplace_back(buf, std::min(static_cast<size_t>(n), sizeof buf - 1));
  }

  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

bool is_rocksdb_file(const std::string& name) {
  auto ends_with = [&](const char* suffix) {
    std::string s{suffix};
    return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return name.rfind("MANIFEST-", 0) == 0 || ends_with(".sst") || ends_with(".log") ||
         name.rfind("OPTIONS-", 0) == 0;
}

// The first path under `dir` in `text`, which is the damaged file in RocksDB's messages ("... in
// DIR/000018.sst offset 0 size 96 in file DIR/MANIFEST-000020").
std::string first_path_in(const std::string& text, const fs::path& dir) {
  auto prefix = dir.string() + "/";
  auto at = text.find(prefix);
  if (at == std::string::npos) return {};
  auto end = text.find_first_of(" :,;\t\n", at);
  return text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

std::string advice(const fs::path& dir) {
  return ". certfleet changed nothing in " + dir.string() +
         " and does not repair it: stop everything that uses it, restore the directory from a "
         "backup and start again (docs/storage.md, \"Damaged files\")";
}

// Whether another process holds RocksDB's lock on the database: it is open and being written, so
// files may come and go under a check, and the open that follows says the database is in use.
bool locked_by_another_process(const fs::path& dir) {
  int fd = ::open((dir / "LOCK").c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  bool locked = ::fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
  ::close(fd);
  return locked;
}

}  // namespace

caf::error describe_damage(const rocksdb::Status& s, const fs::path& dir, const std::string& what) {
  auto text = s.ToString();
  auto file = first_path_in(text, dir);
  if (file.empty() && text.find("CURRENT") != std::string::npos) file = (dir / "CURRENT").string();
  auto where = file.empty() ? "a file in " + dir.string() : file;
  return make_error(ec::corrupt_data, what + " " + dir.string() + " is damaged: " + where + ": " +
                                          text + advice(dir));
}

caf::error check_before_open(const rocksdb::DBOptions& options, const fs::path& dir,
                             const std::string& what) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return {};
  bool has_files = false;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (is_rocksdb_file(entry.path().filename().string())) has_files = true;
  auto current = dir / "CURRENT";
  if (!fs::exists(current, ec)) {
    if (!has_files) return {};
    // RocksDB would start a new, empty database here and leave the old files unreferenced.
    return make_error(ec::corrupt_data, what + " " + dir.string() +
                                            " is damaged: " + current.string() +
                                            " is missing, so the database's files cannot be "
                                            "found (it names the MANIFEST that lists them)" +
                                            advice(dir));
  }
  if (locked_by_another_process(dir)) return {};
  auto recorder = std::make_shared<warning_recorder>();
  rocksdb::DBOptions o = options;
  o.info_log = recorder;
  o.create_if_missing = false;
  o.listeners.clear();
  // A record that is complete but fails its checksum is damage, not a torn write: a power loss
  // leaves a log that ends inside a record, which this mode accepts and the open that follows
  // drops (docs/storage.md, "Damaged files").
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  std::vector<std::string> families;
  auto s = rocksdb::DB::ListColumnFamilies(o, dir.string(), &families);
  if (!s.ok())
    return s.IsCorruption() || s.IsPathNotFound() || s.IsNotFound() ? describe_damage(s, dir, what)
                                                                    : caf::error{};
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : families) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::OpenForReadOnly(o, dir.string(), descriptors, &handles, &raw);
  if (s.ok()) {
    std::unique_ptr<rocksdb::DB> db(raw);
    s = db->VerifyChecksum();
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    db->Close();
  }
  if (s.ok()) return {};
  if (!s.IsCorruption()) {
    // Not damage (permissions, a file a concurrent writer in this process deleted): the
    // read-write open that follows reports it in its words.
    return {};
  }
  if (first_path_in(s.ToString(), dir).empty()) {
    // A damaged log record: RocksDB names the log only in its warning ("DIR/000032.log: dropping
    // 406 bytes; Corruption: checksum mismatch").
    for (const auto& line : recorder->lines()) {
      auto file = first_path_in(line, dir);
      if (file.empty() || line.find("Corruption") == std::string::npos) continue;
      auto cause = line.substr(line.find(file) + file.size());
      if (cause.rfind(": ", 0) == 0) cause.erase(0, 2);
      return make_error(ec::corrupt_data,
                        what + " " + dir.string() + " is damaged: " + file +
                            ": a record of this write-ahead log fails its check before the log's "
                            "end (" +
                            cause +
                            "), so recovering would lose the acknowledged writes in and after it" +
                            advice(dir));
    }
  }
  return describe_damage(s, dir, what);
}

}  // namespace certfleet::storage_detail
