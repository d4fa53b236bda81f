// The agent's local control socket: a Unix stream socket `<state>/fleet.sock` (mode 0600, in the
// 0700 state directory; peers with another uid are refused) speaking JSON lines. Each request
// line gets one reply line. Requests:
//   {"endpoint": 3, "fault": "offline"}                 also "all" instead of an index
//   {"endpoint": 3, "fault": "slow-handshake", "value": 500}
//   {"endpoint": 0, "revoke": "<thumbprint>"}
//   {"endpoint": 0, "managers": true}                   -> {"ok": true, "managers": ["<hex>"]}
// Replies: {"ok": true} or {"ok": false, "code": "<ec name>", "error": "<sentence>"}.
//
// The server runs one thread and serves one client at a time (each read has a 5 s deadline, so a
// silent client cannot wedge it). Thread-safety: `control_call` from any thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>

#include <nlohmann/json.hpp>

#include "agent/server.hpp"
#include "common/error.hpp"

namespace certfleet::agent {

class control_server {
 public:
  using handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  /// Listens on `socket_path`. A leftover socket file nobody answers on is replaced; one that an
  /// agent still answers on is `ec::already_exists` ("another agent runs on this state dir").
  static caf::expected<std::unique_ptr<control_server>> start(
      const std::filesystem::path& socket_path, handler h);
  ~control_server();
  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;

  struct impl;

 private:
  explicit control_server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// The standard request handler for a running `agent_server` (requests in the file comment).
nlohmann::json handle_control_request(agent_server& server, const nlohmann::json& request);

/// Sends one request and waits for its reply. `ec::not_found` when no agent listens on the socket
/// (nothing there, or a stale file), `ec::timeout` past `deadline`, `ec::protocol_error` for a
/// reply that is not JSON.
caf::expected<nlohmann::json> control_call(
    const std::filesystem::path& socket_path, const nlohmann::json& request,
    std::chrono::milliseconds deadline = std::chrono::seconds{30});

}  // namespace certfleet::agent
