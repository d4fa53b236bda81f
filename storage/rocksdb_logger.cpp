#include "storage/rocksdb_logger.hpp"

#include <cstdarg>
#include <cstdio>
#include <string>

#include <spdlog/spdlog.h>

namespace certfleet::storage_detail {
namespace {

spdlog::level::level_enum level_of(rocksdb::InfoLogLevel level) {
  switch (level) {
    case rocksdb::InfoLogLevel::DEBUG_LEVEL:
      return spdlog::level::trace;
    case rocksdb::InfoLogLevel::INFO_LEVEL:
    case rocksdb::InfoLogLevel::HEADER_LEVEL:
      return spdlog::level::debug;
    case rocksdb::InfoLogLevel::WARN_LEVEL:
      return spdlog::level::warn;
    default:
      return spdlog::level::err;
  }
}

class spdlog_info_logger final : public rocksdb::Logger {
 public:
  spdlog_info_logger() : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {}

  using rocksdb::Logger::Logv;

  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }

  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    auto lvl = level_of(level);
    auto logger = spdlog::default_logger_raw();
    if (logger == nullptr || !logger->should_log(lvl)) return;
    char buf[1024];
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(buf, sizeof buf, format, copy);
    va_end(copy);
    if (n < 0) return;
    std::string text(buf, std::min(static_cast<size_t>(n), sizeof buf - 1));
    // RocksDB's lines may end with a newline of their own; the sink adds one.
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    logger->log(lvl, "rocksdb: {}", text);
  }
};

class resume_manually final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status bg_error,
                            bool* auto_recovery) override {
    if (is_no_space(bg_error)) *auto_recovery = false;
  }
};

}  // namespace

bool is_no_space(const rocksdb::Status& s) {
  if (s.IsNoSpace()) return true;
  if (!s.IsIOError()) return false;
  auto text = s.ToString();
  return text.find("No space left on device") != std::string::npos ||
         text.find("ENOSPC") != std::string::npos;
}

std::shared_ptr<rocksdb::EventListener> make_manual_resume_listener() {
  return std::make_shared<resume_manually>();
}

std::shared_ptr<rocksdb::Logger> make_info_logger() {
  return std::make_shared<spdlog_info_logger>();
}

}  // namespace certfleet::storage_detail
