// certfleetd speaks systemd's notify protocol: the test owns the NOTIFY_SOCKET (a Unix datagram
// socket, as systemd does) and reads what the real daemon sends: READY=1 with a STATUS= line once
// it serves, WATCHDOG=1 keep-alives at half of WATCHDOG_USEC, and STOPPING=1 on SIGTERM.
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/dead_port.hpp"
#include "tests/support/process.hpp"

namespace certfleet::test {
namespace {

using namespace std::chrono_literals;

class notify_socket {
 public:
  explicit notify_socket(const std::filesystem::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << std::strerror(errno);
  }
  ~notify_socket() { ::close(fd_); }

  /// The next datagram, or "" when none arrives within `timeout`.
  std::string next(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "";
    char buf[4096];
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

  /// Datagrams until one contains `what` (returned), or "" after `timeout`.
  std::string until(const std::string& what, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      auto msg = next(std::max(left, 1ms));
      if (msg.find(what) != std::string::npos) return msg;
    }
    return "";
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

TEST(systemd_notify, the_daemon_reports_ready_status_watchdog_and_stopping) {
  temp_dir dir{"certfleet-notify"};
  auto state = (dir / "mgr").string();
  ASSERT_EQ(run({binary("apps/certfleet"), "-s", state, "init"}).exit_code, 0);
  notify_socket sock{dir / "notify.sock"};
  child daemon({binary("apps/daemon/certfleetd"), "-s", state}, dir / "daemon.log",
               {{"NOTIFY_SOCKET", (dir / "notify.sock").string()}, {"WATCHDOG_USEC", "400000"}});

  auto ready = sock.until("READY=1", 30s);
  ASSERT_NE(ready, "") << daemon.log();
  EXPECT_NE(ready.find("STATUS=0 servers, 0 connected"), std::string::npos) << ready;
  // Ready means serving: the control socket answers.
  EXPECT_EQ(run({binary("apps/certfleet"), "-s", state, "status"}).exit_code, 0);

  // Keep-alives at half the 400 ms period, each with the counts.
  for (int i = 0; i < 3; ++i) {
    auto keep_alive = sock.until("WATCHDOG=1", 5s);
    ASSERT_NE(keep_alive, "") << daemon.log();
    EXPECT_NE(keep_alive.find("STATUS="), std::string::npos) << keep_alive;
  }

  ::kill(daemon.pid(), SIGTERM);
  EXPECT_NE(sock.until("STOPPING=1", 10s), "") << daemon.log();
  EXPECT_EQ(daemon.stop(), 0);
}

TEST(systemd_notify, a_stuck_scheduler_stops_the_watchdog_keep_alives) {
  temp_dir dir{"certfleet-notify"};
  auto state = (dir / "mgr").string();
  ASSERT_EQ(run({binary("apps/certfleet"), "-s", state, "init"}).exit_code, 0);
  std::ofstream{dir / "certfleet.toml"} << "state_dir = \"" << state << "\"\n"
                                        << "[daemon]\nrequest_timeout_ms = 300\n";
  notify_socket sock{dir / "notify.sock"};
  // The test build's failpoint holds the scheduler thread that runs the supervisor for 3 s on
  // every status request, as an actor stuck in a loop or a blocking call would.
  child daemon(
      {binary("apps/daemon/certfleetd-testing"), "--config", (dir / "certfleet.toml").string()},
      dir / "daemon.log",
      {{"NOTIFY_SOCKET", (dir / "notify.sock").string()},
       {"WATCHDOG_USEC", "400000"},
       {"CERTFLEET_FAILPOINTS", "supervisor.status=sleep:3000"}});
  ASSERT_NE(sock.until("READY=1", 30s), "") << daemon.log();
  // Keep-alives would come every 200 ms; systemd kills a unit that sends none for 400 ms.
  EXPECT_EQ(sock.until("WATCHDOG=1", 2s), "") << "a keep-alive although the actors are stuck";
  EXPECT_TRUE(wait_until(
      [&] {
        return daemon.log().find("did not answer a status request: no watchdog keep-alive sent") !=
               std::string::npos;
      },
      10s))
      << daemon.log();
  daemon.stop(SIGKILL);
}

TEST(systemd_notify, without_notify_socket_the_daemon_runs_as_before) {
  temp_dir dir{"certfleet-notify"};
  auto state = (dir / "mgr").string();
  ASSERT_EQ(run({binary("apps/certfleet"), "-s", state, "init"}).exit_code, 0);
  child daemon({binary("apps/daemon/certfleetd"), "-s", state}, dir / "daemon.log");
  ASSERT_TRUE(wait_until(
      [&] {
        return run({binary("apps/certfleet"), "-s", state, "status"}).exit_code == 0;
      },
      30s))
      << daemon.log();
  EXPECT_EQ(daemon.stop(), 0);
}

/// Stands in for journald on a machine that runs none: binds its socket, and removes it (and the
/// directories it created) again.
class fake_journald {
 public:
  static constexpr const char* dir = "/run/systemd/journal";
  fake_journald() {
    created_ = !std::filesystem::exists(dir);
    std::filesystem::create_directories(dir);
    sock_ = std::make_unique<notify_socket>(std::filesystem::path(dir) / "socket");
  }
  ~fake_journald() {
    sock_.reset();
    std::filesystem::remove(std::filesystem::path(dir) / "socket");
    if (created_) std::filesystem::remove(dir);
  }
  notify_socket& socket() { return *sock_; }

 private:
  bool created_ = false;
  std::unique_ptr<notify_socket> sock_;
};

TEST(systemd_journal, when_stderr_is_the_journal_stream_logs_are_structured_entries) {
  if (::geteuid() != 0 || std::filesystem::exists("/run/systemd/journal/socket"))
    GTEST_SKIP() << "needs root, and a machine without a running journald to stand in for it";
  fake_journald journald;
  temp_dir dir{"certfleet-journal"};
  auto state = (dir / "mgr").string();
  ASSERT_EQ(run({binary("apps/certfleet"), "-s", state, "init"}).exit_code, 0);
  // systemd names the stream it connected stderr to by device and inode.
  auto log = dir / "daemon.log";
  std::ofstream{log}.flush();
  struct stat st {};
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  child daemon({binary("apps/daemon/certfleetd"), "-s", state}, log,
               {{"JOURNAL_STREAM", std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)}});
  auto entry = journald.socket().until("MESSAGE=certfleetd ready", 30s);
  ASSERT_NE(entry, "") << daemon.log();
  EXPECT_NE(entry.find("\nPRIORITY=6\n"), std::string::npos) << entry;
  EXPECT_NE(entry.find("SYSLOG_IDENTIFIER=certfleetd"), std::string::npos) << entry;
  EXPECT_EQ(daemon.stop(), 0);
  EXPECT_EQ(daemon.log().find("certfleetd ready"), std::string::npos)
      << "text logs went to stderr too: " << daemon.log();
}

TEST(systemd_journal, stored_events_are_journal_entries_with_server_and_event_fields) {
  if (::geteuid() != 0 || std::filesystem::exists("/run/systemd/journal/socket"))
    GTEST_SKIP() << "needs root, and a machine without a running journald to stand in for it";
  fake_journald journald;
  temp_dir dir{"certfleet-journal"};
  auto state = (dir / "mgr").string();
  ASSERT_EQ(run({binary("apps/certfleet"), "-s", state, "init"}).exit_code, 0);
  auto log = dir / "daemon.log";
  std::ofstream{log}.flush();
  struct stat st {};
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  child daemon({binary("apps/daemon/certfleetd"), "-s", state}, log,
               {{"JOURNAL_STREAM", std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)}});
  ASSERT_NE(journald.socket().until("MESSAGE=certfleetd ready", 30s), "") << daemon.log();
  // A server nobody answers for: adding it stores server_added and credentials_retained.
  dead_port port;
  auto added = run(
      {binary("apps/certfleet"), "-s", state, "--json", "server", "add",
       "127.0.0.1:" + std::to_string(port.port()), "--account", "backup-admin", "--password-stdin"},
      "pw\n");
  ASSERT_EQ(added.exit_code, 0) << added.err;
  auto id = nlohmann::json::parse(added.out).at("id").get<std::string>();
  auto entry = journald.socket().until("CERTFLEET_EVENT=server_added", 30s);
  ASSERT_NE(entry, "") << daemon.log();
  EXPECT_NE(entry.find("\nCERTFLEET_SERVER_ID=" + id), std::string::npos) << entry;
  EXPECT_NE(entry.find("MESSAGE=event "), std::string::npos) << entry;
  EXPECT_NE(entry.find("\nPRIORITY=6"), std::string::npos) << entry;
  EXPECT_EQ(daemon.stop(), 0);
}

}  // namespace
}  // namespace certfleet::test
