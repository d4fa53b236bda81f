// The agent's local control socket: a Unix stream socket `<state>/fleet.sock` (mode 0600, in the
// 0700 state directory; peers with another uid are refused) speaking JSON lines. Each request
// line gets one reply line. Requests:
//   {"endpoint": 3, "fault": "offline"}                 also "all" instead of an index
//   {"endpoint": 3, "fault": "slow-handshake", "value": 500}
//   {"endpoint": 0, "revoke": "<thumbprint>"}
//   {"endpoint": 0, "managers": true}                   -> {"ok": true, "managers": ["<hex>"]}
// Replies have the shape of every certfleet control socket (common/jsonl.hpp):
//   {"id": null, "ok": true, "result": {}}                 ("managers" gives {"managers": [...]})
//   {"id": null, "ok": false, "error": {"code": "<ec name>", "message": "<sentence>", "exit_code":
//   N}}
// A request may carry an "id"; the reply echoes it.
//
// The socket is served by the JSON-lines server of common/jsonl_server.hpp: a few connections at
// once, each closed after 5 s without a complete request line, so a silent client cannot wedge it.
// Thread-safety: `control_call` from any thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>

#include <nlohmann/json.hpp>

#include "agent/server.hpp"
#include "common/error.hpp"
#include "common/jsonl_server.hpp"

namespace certfleet::agent {

class control_server {
 public:
  /// Answers one request with the reply's result, or the error to report.
  using handler = std::function<caf::expected<nlohmann::json>(const nlohmann::json& request)>;

  /// Listens on `socket_path`. A leftover socket file nobody answers on is replaced; one that an
  /// agent still answers on is `ec::already_exists` ("another agent runs on this state dir").
  static caf::expected<std::unique_ptr<control_server>> start(
      const std::filesystem::path& socket_path, handler h);
  ~control_server();
  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;

 private:
  explicit control_server(std::unique_ptr<jsonl::server> s) : server_(std::move(s)) {}
  std::unique_ptr<jsonl::server> server_;
};

/// The standard request handler for a running `agent_server` (requests in the file comment):
/// the reply's result, or `ec::invalid_argument` for a request it cannot read, or the error of the
/// operation.
caf::expected<nlohmann::json> handle_control_request(agent_server& server,
                                                     const nlohmann::json& request);

/// Sends one request and waits for its reply (the whole reply object; `jsonl::error_from_json`
/// turns its "error" back into a caf::error). `ec::not_found` when no agent listens on the socket
/// (nothing there, or a stale file), `ec::timeout` past `deadline`, `ec::protocol_error` for a
/// reply that is not JSON.
caf::expected<nlohmann::json> control_call(
    const std::filesystem::path& socket_path, const nlohmann::json& request,
    std::chrono::milliseconds deadline = std::chrono::seconds{30});

}  // namespace certfleet::agent
