#include "apps/daemon/systemd_notify.hpp"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <vector>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "control/protocol.hpp"

namespace certfleet {
namespace {

/// STATUS= without a watchdog: often enough for `systemctl status` to look current.
constexpr std::chrono::seconds status_interval{5};

void notify(const std::string& text) {
  sd_notify(0, text.c_str());
}

int journal_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return 7;  // LOG_DEBUG
    case spdlog::level::info:
      return 6;  // LOG_INFO
    case spdlog::level::warn:
      return 4;  // LOG_WARNING
    case spdlog::level::err:
      return 3;  // LOG_ERR
    case spdlog::level::critical:
      return 2;  // LOG_CRIT
    default:
      return 6;
  }
}

/// One journal entry per message, with the fields operators filter on (journalctl
/// CERTFLEET_SERVER_ID=s-1f3a9c2e).
class journal_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit journal_sink(std::string identifier) : identifier_(std::move(identifier)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string text(msg.payload.data(), msg.payload.size());
    std::vector<std::string> fields{
        "MESSAGE=" + text,
        "PRIORITY=" + std::to_string(journal_priority(msg.level)),
        "SYSLOG_IDENTIFIER=" + identifier_,
    };
    if (auto id = server_id_in(text); !id.empty()) fields.push_back("CERTFLEET_SERVER_ID=" + id);
    for (const auto& type : control::event_types())
      if (text.find(type) != std::string::npos) {
        fields.push_back("CERTFLEET_EVENT=" + type);
        break;
      }
    std::vector<iovec> iov;
    for (auto& f : fields) iov.push_back({f.data(), f.size()});
    sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
  }
  void flush_() override {}

 private:
  std::string identifier_;

  // The first server id ("s-" and 8 lowercase hex digits, as a whole word) in `text`, or "".
  static std::string server_id_in(const std::string& text) {
    auto is_word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    auto is_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
    constexpr size_t length = 10;
    for (size_t at = text.find("s-"); at != std::string::npos; at = text.find("s-", at + 1)) {
      if (at > 0 && is_word(text[at - 1])) continue;
      if (text.size() < at + length) break;
      if (!std::all_of(text.begin() + at + 2, text.begin() + at + length, is_hex)) continue;
      if (at + length < text.size() && is_word(text[at + length])) continue;
      return text.substr(at, length);
    }
    return {};
  }
};

}  // namespace

std::string status_line(const status_view& s) {
  std::string line =
      std::to_string(s.servers) + " servers, " + std::to_string(s.connected) + " connected";
  std::string states;
  for (const auto& [state, count] : s.per_state)
    if (count > 0) states += (states.empty() ? "" : ", ") + state + " " + std::to_string(count);
  if (!states.empty()) line += "; " + states;
  return line;
}

systemd_notifier::systemd_notifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  uint64_t usec = 0;
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0) watchdog_ = std::chrono::microseconds{usec};
}

systemd_notifier::~systemd_notifier() {
  {
    std::lock_guard<std::mutex> lock{mtx_};
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void systemd_notifier::ready(manager& m) {
  if (!enabled_) return;
  notify("READY=1\nSTATUS=" + status_line(m.status()));
  thread_ = std::thread([this, &m] { keep_alive(m); });
}

void systemd_notifier::stopping() {
  {
    std::lock_guard<std::mutex> lock{mtx_};
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (enabled_) notify("STOPPING=1\nSTATUS=draining");
}

void systemd_notifier::keep_alive(manager& m) {
  auto interval = watchdog_.count() > 0
                      ? std::chrono::duration_cast<std::chrono::milliseconds>(watchdog_ / 2)
                      : std::chrono::milliseconds{status_interval};
  std::unique_lock<std::mutex> lock{mtx_};
  while (!wake_.wait_for(lock, interval, [this] { return stop_; })) {
    lock.unlock();
    // A request to the supervisor actor and its answer: only a scheduler that runs actors gets
    // here with a filled view (the manager's thumbprint is never empty once started).
    auto s = m.status();
    bool answered = !s.manager_thumbprint.empty();
    if (answered) {
      notify(std::string(watchdog_.count() > 0 ? "WATCHDOG=1\n" : "") + "STATUS=" + status_line(s));
    } else {
      spdlog::warn("the manager did not answer a status request: no watchdog keep-alive sent");
    }
    lock.lock();
  }
}

bool stderr_is_journal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  struct stat st {};
  if (::fstat(2, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

void log_to_journal(const std::string& identifier) {
  auto logger =
      std::make_shared<spdlog::logger>("certfleet", std::make_shared<journal_sink>(identifier));
  spdlog::register_logger(logger);
  spdlog::set_default_logger(logger);
}

}  // namespace certfleet
