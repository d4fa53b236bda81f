// Non-blocking TCP connects with deadlines, on one dedicated thread.
//
// CAF 0.17's own connect calls block, and a socket must not be handed to CAF before its connect
// has completed (both explained in docs/platform.md). The connector owns each socket until the
// connect finishes: it waits for writability with epoll, checks SO_ERROR, and only then passes the
// file descriptor to the `done` callback, which takes ownership. A refused, unreachable or
// timed-out connect gives `fd == -1` and an error naming the address and the cause.
//
// `done` runs on the connector thread: keep it short (send a message to an actor).
// Thread-safety: `connect` may be called from any thread. Destruction stops the thread, closes
// every socket still connecting and calls their `done` with `ec::timeout` ("shutting down").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/error.hpp"

namespace certfleet {

class connector {
 public:
  using done_fn = std::function<void(int fd, const caf::error& err)>;

  connector();
  ~connector();
  connector(const connector&) = delete;
  connector& operator=(const connector&) = delete;

  /// Starts connecting to `host:port` (an IPv4/IPv6 literal or a name resolved on the connector
  /// thread); `done` is called exactly once.
  void connect(std::string host, uint16_t port, std::chrono::milliseconds deadline, done_fn done);

  /// Connects still in progress.
  size_t in_flight() const;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
uint64_t raise_fd_limit();

}  // namespace certfleet
