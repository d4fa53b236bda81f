// Reconnect pacing for one server: when to try again after a failure, and which connectivity
// events to record. Plain values with no clock or randomness of their own (both are passed in), so
// tests can drive them deterministically.
//
// Backoff. Each failed attempt doubles the ceiling of the next delay (capped exponential with full
// jitter: uniform in [0, min(cap, initial * 2^failures)]). A connection that completes TLS has not
// proved anything yet: a server that accepts TLS and then closes (a wrong manager pin on its side,
// a crashing service) would otherwise be reconnected at the initial delay forever. The count is
// reset only when a connection proved healthy: a completed collection or registration exchange
// (`healthy()`), or a connection that stayed up for at least `healthy_after` (`disconnected`).
// docs/reliability.md, "Flapping servers", has the handshake rate this bounds.
//
// Connectivity events. A server that keeps coming up and going down records at most
// `max_cycles` up/down pairs per `window`; a suppressed `connection_up` suppresses its
// `connection_down` too, so the log never shows a server up that is down. The next recorded
// `connection_up` says how many cycles were left out.
//
// Thread-safety: plain values, owned by one server actor.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

namespace certfleet {

struct backoff_policy {
  std::chrono::milliseconds initial{1000};
  std::chrono::milliseconds cap{300000};
  /// A connection up this long before it ends counts as healthy.
  std::chrono::milliseconds healthy_after{60000};
};

class reconnect_backoff {
 public:
  explicit reconnect_backoff(backoff_policy p = {}) : policy_(p) {}

  /// The delay before the next attempt, drawn with `random` (uniform in [0, max]); counts one
  /// more failure.
  std::chrono::milliseconds next_delay(const std::function<uint64_t(uint64_t max)>& random);
  /// TLS came up at `now_ms`. Does not reset the count.
  void connected(int64_t now_ms);
  /// The connection did what it was made for (a collection or a registration answer).
  void healthy();
  /// The connection ended at `now_ms`; resets the count if it had been up for `healthy_after`.
  void disconnected(int64_t now_ms);
  /// Forgets the failures (an admin acted: trust given, new credentials).
  void reset();

  /// Failures since the last reset.
  uint32_t failures() const { return failures_; }
  const backoff_policy& policy() const { return policy_; }

 private:
  backoff_policy policy_;
  uint32_t failures_ = 0;
  int64_t up_since_ms_ = -1;
};

/// Which connection_up/connection_down events of one server to record (see the file comment).
class connectivity_limiter {
 public:
  connectivity_limiter(uint32_t max_cycles, std::chrono::milliseconds window)
      : max_cycles_(max_cycles), window_(window) {}

  /// The connection came up at `now_ms`: true to record `connection_up` (then `take_suppressed`
  /// says how many cycles were left out before it).
  bool up(int64_t now_ms);
  /// The connection went down: true to record `connection_down` (its `connection_up` was).
  bool down();
  /// Cycles left out since the last recorded `connection_up`; reset by reading.
  uint64_t take_suppressed();

 private:
  uint32_t max_cycles_;
  std::chrono::milliseconds window_;
  // Times of the recorded ups within the window, oldest first: at most max_cycles_ of them. A
  // vector, not a deque: every server holds one, and an empty std::deque allocates 576 bytes.
  std::vector<int64_t> recorded_;
  uint64_t suppressed_ = 0;
  bool current_recorded_ = false;
};

}  // namespace certfleet
