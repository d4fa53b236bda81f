// Helpers for the agent tests: temp dirs, a blocking TLS test client built from
// `tls_client_session`, running the real binaries, and a child process with its stdout.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "crypto/identity.hpp"
#include "protocol/tls_session.hpp"
#include "tests/support/shell.hpp"
#include "tests/support/temp_dir.hpp"

namespace certfleet::testing {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

using ::certfleet::test::command_result;
using ::certfleet::test::run_command;
using ::certfleet::test::temp_dir;

inline identity make_identity(const std::string& cn) {
  auto id = identity::generate({cn, "certfleet tests"}, std::chrono::hours{24}, cn);
  if (!id) throw std::runtime_error(describe(id.error()));
  return *id;
}

inline std::string agent_binary() {
  return std::string(CERTFLEET_BINARY_DIR) + "/apps/agent/certfleet-agent";
}

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Blocking TCP connect with a deadline; returns the fd or -1 with errno (ECONNREFUSED,
/// ETIMEDOUT).
inline int tcp_connect(const std::string& host, uint16_t port, milliseconds deadline) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, static_cast<int>(deadline.count())) != 1) {
    ::close(fd);
    errno = ETIMEDOUT;
    return -1;
  }
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

/// Waits until the server closes `fd` (EOF or reset), reading and dropping what it sends;
/// returns how long after `since` that was, or nothing when it is still open at `limit`.
inline std::optional<milliseconds> time_until_closed(int fd, steady::time_point since,
                                                     milliseconds limit) {
  auto until = since + limit;
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(until - steady::now()).count();
    if (left <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) != 1) return std::nullopt;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return std::chrono::duration_cast<milliseconds>(steady::now() - since);
  }
}

/// A manager-side TLS connection over a plain socket, driven synchronously by the test.
class test_client {
 public:
  test_client(identity local, std::string host, uint16_t port,
              std::shared_ptr<tls_session_cache> cache = nullptr)
      : local_(std::move(local)),
        host_(std::move(host)),
        port_(port),
        cache_(cache ? std::move(cache) : std::make_shared<tls_session_cache>(16)) {}
  ~test_client() {
    if (fd_ >= 0) ::close(fd_);
  }
  test_client(const test_client&) = delete;
  test_client& operator=(const test_client&) = delete;

  /// Connects and completes the TLS handshake before `deadline`; any server certificate is
  /// accepted and recorded.
  caf::error connect(milliseconds deadline = 5000ms) {
    auto until = steady::now() + deadline;
    fd_ = tcp_connect(host_, port_, deadline);
    if (fd_ < 0)
      return make_error(ec::io_error, std::string("connect failed: ") + std::strerror(errno));
    tls_outputs out;
    out.ciphertext = [this](const uint8_t* d, size_t n) {
      pending_.insert(pending_.end(), d, d + n);
    };
    out.message = [this](wire::message&& m) { inbox_.push_back(std::move(m)); };
    out.closed = [this](const caf::error& e) {
      closed_ = true;
      close_reason_ = e;
    };
    session_ = std::make_unique<tls_client_session>(
        local_, [](const thumbprint&) { return caf::error{}; }, cache_, host_, port_,
        std::move(out));
    if (auto err = flush()) return err;
    while (!session_->is_active()) {
      if (auto err = pump(until)) return err;
    }
    return {};
  }

  caf::error send(const wire::message& m) {
    if (auto err = session_->send(m)) return err;
    return flush();
  }

  /// The next message, or an error when the connection closes or `deadline` passes first.
  caf::expected<wire::message> receive(milliseconds deadline = 5000ms) {
    auto until = steady::now() + deadline;
    while (inbox_.empty()) {
      if (auto err = pump(until)) return err;
    }
    auto m = std::move(inbox_.front());
    inbox_.pop_front();
    return m;
  }

  /// True when the server closes the connection before `deadline` without sending a message.
  bool closed_without_message(milliseconds deadline = 5000ms) {
    auto until = steady::now() + deadline;
    while (inbox_.empty()) {
      auto err = pump(until);
      if (err) return inbox_.empty() && code_of(err) != ec::timeout;
    }
    return false;
  }

  /// Encrypts `m` and hands back its TLS records instead of sending them (to trickle them).
  caf::expected<std::vector<uint8_t>> encrypt(const wire::message& m) {
    if (auto err = session_->send(m)) return err;
    std::vector<uint8_t> out;
    out.swap(pending_);
    return out;
  }

  std::optional<thumbprint> server_thumbprint() const { return session_->peer_thumbprint(); }
  tls_session& session() { return *session_; }
  int fd() const { return fd_; }

 private:
  caf::error flush() {
    size_t off = 0;
    while (off < pending_.size()) {
      ssize_t n = ::send(fd_, pending_.data() + off, pending_.size() - off, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, 1000);
        continue;
      }
      if (n <= 0) {
        pending_.clear();
        return make_error(ec::io_error, "send failed: the server closed the connection");
      }
      off += static_cast<size_t>(n);
    }
    pending_.clear();
    return {};
  }

  // Reads once (waiting until `until`) and feeds the session.
  caf::error pump(steady::time_point until) {
    if (closed_ || peer_eof_)
      return make_error(ec::io_error, "the server closed the connection" +
                                          (close_reason_ ? ": " + describe(close_reason_) : ""));
    auto left = std::chrono::duration_cast<milliseconds>(until - steady::now()).count();
    if (left <= 0) return make_error(ec::timeout, "nothing from the server before the deadline");
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r == 0) return make_error(ec::timeout, "nothing from the server before the deadline");
    uint8_t buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return {};
    if (n <= 0) {
      peer_eof_ = true;
      return make_error(ec::io_error, "the server closed the connection");
    }
    auto err = session_->received(buf, static_cast<size_t>(n));
    if (auto ferr = flush(); ferr && !err) err = ferr;
    return err;
  }

  identity local_;
  std::string host_;
  uint16_t port_;
  std::shared_ptr<tls_session_cache> cache_;
  int fd_ = -1;
  std::unique_ptr<tls_client_session> session_;
  std::vector<uint8_t> pending_;
  std::deque<wire::message> inbox_;
  bool closed_ = false;
  bool peer_eof_ = false;
  caf::error close_reason_;
};

/// A child process whose stdout the test reads line by line; SIGTERM and reaped on destruction.
class child_process {
 public:
  explicit child_process(const std::vector<std::string>& argv) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_fd_ = out[0];
  }
  ~child_process() { stop(); }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// The next stdout line, or nothing when the child exits or `deadline` passes.
  std::optional<std::string> read_line(milliseconds deadline) {
    auto until = steady::now() + deadline;
    for (;;) {
      auto nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        auto line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<milliseconds>(until - steady::now()).count();
      if (left <= 0 || out_fd_ < 0) return std::nullopt;
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
      char buf[4096];
      ssize_t n = ::read(out_fd_, buf, sizeof buf);
      if (n <= 0) return std::nullopt;
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }

  /// Reads lines until one contains `needle`; false when the child ends or the deadline passes.
  bool wait_for_line(const std::string& needle, milliseconds deadline) {
    auto until = steady::now() + deadline;
    for (;;) {
      auto left = std::chrono::duration_cast<milliseconds>(until - steady::now());
      auto line = read_line(left);
      if (!line) return false;
      if (line->find(needle) != std::string::npos) return true;
    }
  }

  /// SIGTERM, then waits; returns the exit status (or -1).
  int stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    if (out_fd_ >= 0) ::close(out_fd_);
    out_fd_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
};

}  // namespace certfleet::testing
