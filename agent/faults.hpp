// Faults injected into the agent for tests and fleet simulation (`certfleet-agent fault`, the
// control socket): per endpoint (`fault_settings`, agent/endpoint.hpp) and, for a connection
// accepted while output faults are on, per connection (`connection_faults`). Production
// connections carry no fault state: `connection_faults::from` returns null when no output fault
// is on.
//
// Thread-safety: none; connection faults belong to the connection's event-loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/endpoint.hpp"
#include "common/error.hpp"

namespace certfleet::agent {

enum class fault_kind {
  offline,               // close the listening socket and the endpoint's connections
  online,                // listen again on the same address and port
  regenerate,            // new key and certificate (new thumbprint)
  stall,                 // accept TCP, never answer
  slow_handshake,        // delay every flight of output by `value` ms
  drop_after,            // close a connection after `value` bytes written
  deny_registrations,    // answer register_request with denied{not_accepting}
  accept_registrations,  // undo deny_registrations
  clear,                 // all faults off, and online
};
struct fault_command {
  fault_kind kind = fault_kind::clear;
  uint64_t value = 0;
};
/// "offline", "slow-handshake", ... (the CLI and control-socket spelling).
const char* to_string(fault_kind k);
caf::expected<fault_kind> parse_fault_kind(const std::string& text);
/// Whether the fault takes a number (`slow-handshake MS`, `drop-after BYTES`).
bool takes_value(fault_kind k);

/// The output faults of one connection, fixed when it was accepted.
struct connection_faults {
  using time_point = std::chrono::steady_clock::time_point;

  /// Null when `f` has no output fault on (the production case).
  static std::unique_ptr<connection_faults> from(const fault_settings& f);

  /// Delay every flight of output by this much (0: no delay).
  std::chrono::milliseconds slow{0};
  /// Close after this many bytes written (0: never).
  uint64_t drop_after = 0;
  /// Bytes written so far.
  uint64_t written = 0;
  /// Delayed output: when it may be written, and the bytes.
  std::deque<std::pair<time_point, std::vector<uint8_t>>> delayed;

  /// How much of `want` bytes may be written before the drop-after limit.
  size_t writable(size_t want) const;
  /// Counts `n` written bytes; true when the drop-after limit is now reached.
  bool wrote(size_t n);
};

}  // namespace certfleet::agent
