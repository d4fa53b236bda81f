// certfleetd under systemd: the sd_notify protocol (Type=notify) and journald logging.
//
// `systemd_notifier` sends READY=1 with a STATUS= line once the fleet is loaded and the control
// socket listens, STATUS= lines with the counts while it runs, WATCHDOG=1 when the unit sets
// WatchdogSec=, and STOPPING=1 when the daemon starts draining. Every WATCHDOG=1 follows a status
// request answered by the manager's actors on the CAF scheduler, so a stuck scheduler stops the
// keep-alives and systemd restarts the daemon. Without NOTIFY_SOCKET every call does nothing.
//
// Thread-safety: construct, call and destroy from one thread (main); the keep-alive thread is
// internal.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "actors/manager.hpp"

namespace certfleet {

/// "12 servers, 10 connected; trusted 10, pending_registration 2".
std::string status_line(const status_view& s);

class systemd_notifier {
 public:
  systemd_notifier();
  /// Stops the keep-alive thread.
  ~systemd_notifier();
  systemd_notifier(const systemd_notifier&) = delete;
  systemd_notifier& operator=(const systemd_notifier&) = delete;

  /// Whether systemd (or anything that set NOTIFY_SOCKET) listens.
  bool enabled() const { return enabled_; }

  /// READY=1 with the manager's counts, then the keep-alive thread: STATUS= every interval and
  /// WATCHDOG=1 at half the watchdog period, each after a status round trip through the actors.
  /// `m` must outlive `stopping()` (or this object).
  void ready(manager& m);

  /// STOPPING=1, and the keep-alive thread ends: call it before draining.
  void stopping();

 private:
  void keep_alive(manager& m);

  bool enabled_ = false;
  std::chrono::microseconds watchdog_{0};
  std::mutex mtx_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

/// Whether stderr is the journal stream systemd gave this process (JOURNAL_STREAM names its
/// device and inode): then logs go to journald as structured entries instead of text.
bool stderr_is_journal();

/// Makes the default logger "certfleet" write to journald: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER,
/// and CERTFLEET_SERVER_ID / CERTFLEET_EVENT when the message names a server id or an event type.
/// Call before cli::setup_logging, which then only sets the level.
void log_to_journal(const std::string& identifier);

}  // namespace certfleet
