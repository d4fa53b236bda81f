// The client side of the control socket: what `certfleet` (and tests, and scripts embedding C++)
// use to talk to a running certfleetd.
//
// A `control_client` owns one connected Unix socket; it is movable, not copyable, and not
// thread-safe (one request at a time). Requests are synchronous: `call` sends one line and reads
// lines until the reply with the same id arrives. An error reply becomes a caf::error with the
// daemon's code and message; a dropped connection or an unparseable reply gives
// `ec::protocol_error`.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "control/protocol.hpp"

namespace certfleet::control {

/// Why a connect failed, so the CLI can choose between "not running" and "not allowed".
enum class connect_failure { none, not_running, permission_denied, other };

class control_client {
 public:
  /// Connects to the socket at `path`. On failure the error says "cannot reach certfleetd at PATH:
  /// <reason>" with what to do, and `why` (when given) classifies it.
  static caf::expected<control_client> connect(const std::string& path,
                                               connect_failure* why = nullptr);

  control_client(control_client&& other) noexcept;
  control_client& operator=(control_client&& other) noexcept;
  control_client(const control_client&) = delete;
  control_client& operator=(const control_client&) = delete;
  ~control_client();

  /// Sends `{"id":N,"op":op,"args":args}` and returns the reply's result. `args` may hold a
  /// password: the serialised line is scrubbed after sending.
  caf::expected<nlohmann::json> call(const std::string& op, const nlohmann::json& args);

  /// What a streaming request saw besides events.
  struct stream_end {
    bool cut_off = false;   // the daemon cut the subscriber off (it fell behind)
    uint64_t last_seq = 0;  // last seq delivered (cutoff) or replayed (end of replay)
    std::string reason;     // the daemon's reason, for a cutoff
  };

  /// Sends an `events.subscribe` request and calls `on_event` for each `{"event":..}` line until
  /// the final reply (follow=false), a cutoff line, or `on_event` returning false. An error reply
  /// is returned as an error.
  caf::expected<stream_end> subscribe(const nlohmann::json& args,
                                      const std::function<bool(const nlohmann::json&)>& on_event);

  /// Sends raw bytes (tests use it for malformed and oversized lines).
  caf::error send_raw(const std::string& bytes);
  /// Reads one line (without "\n"); `ec::protocol_error` when the daemon closed the connection.
  caf::expected<std::string> read_line();

 private:
  control_client(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  caf::expected<nlohmann::json> read_json();

  int fd_ = -1;
  std::string path_;
  std::string buffer_;
  uint64_t next_id_ = 1;
};

}  // namespace certfleet::control
