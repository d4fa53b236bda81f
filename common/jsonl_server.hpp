// A JSON-lines server on a Unix domain socket: the one code path under both control sockets
// (the daemon's control/control_server.hpp and the agent's agent/control.hpp). It owns the socket,
// the accept loop, one thread per connection, line splitting with a length limit, JSON parsing
// and the reply and error shapes of common/jsonl.hpp. What a request means is the caller's.
//
// Socket: a socket file nobody answers on (a process that died) is replaced; one a live process
// answers on gives `ec::already_exists`, and a path that is not a socket is never removed. The
// socket gets `socket_mode` (and `socket_group`) after bind and before listen, so no connection
// can arrive while it is open to others. The caller checks the directory (see
// control/socket_security.hpp for the daemon's rules).
//
// Connections: each peer is identified by the kernel (SO_PEERCRED, SO_PEERGROUPS) and handed to
// `accept_fn`, which returns the request handler for that connection or the error the peer is told
// in one error line before it is closed. Lines longer than `max_line` get a `frame_too_large` error
// line and the connection is closed (where the next request begins cannot be told); lines that are
// not JSON objects get an `invalid_argument` error line and the connection goes on. A connection
// beyond `max_clients` gets an `invalid_state` error line and is closed. Request lines are scrubbed
// after parsing and "password" fields after the handler returns.
//
// Threads: one acceptor thread plus one per connection; handlers run on their connection's thread
// and may block (each connection is served in order, connections in parallel).
//
// Lifetime: `stop()` (also run by the destructor) is idempotent and thread-safe; it closes the
// listener and every connection (a blocked recv, send or poll wakes up), joins every thread and
// removes the socket file. Handlers must not call `stop()`.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/jsonl.hpp"

namespace certfleet::jsonl {

/// Who is on the other end of a connection, as SO_PEERCRED and SO_PEERGROUPS report it.
struct peer_identity {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups; may be empty when the kernel cannot say
};

/// One accepted connection, as a handler sees it. Not thread-safe: used by its own thread only.
class connection {
 public:
  connection(int fd, const std::atomic<bool>& stopping) : fd_(fd), stopping_(stopping) {}
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// The socket, for handlers that stream (they poll it for the peer closing).
  int fd() const { return fd_; }
  /// True once the server is stopping; a streaming handler returns then.
  bool stopping() const { return stopping_.load(); }
  /// Sends `data` completely; false when the peer is gone.
  bool write(const std::string& data);
  /// Sends the ok or error reply line for `result`; false when the peer is gone.
  bool reply(const nlohmann::json& id, const caf::expected<nlohmann::json>& result);

 private:
  int fd_;
  const std::atomic<bool>& stopping_;
};

/// Handles one request (a JSON object; `id` is its "id", null when absent). It writes the reply
/// (or a stream) through `c`; returning false closes the connection.
using request_fn =
    std::function<bool(connection& c, const nlohmann::json& id, nlohmann::json& req)>;

/// Decides, once per connection, how its requests are handled: a handler, or the error the peer is
/// told before the connection is closed.
using accept_fn = std::function<caf::expected<request_fn>(const peer_identity& peer)>;

struct server_options {
  std::string socket_path;
  mode_t socket_mode = 0600;
  /// The socket's group, when `socket_mode` opens it to a group.
  std::optional<gid_t> socket_group;
  size_t max_clients = 128;
  size_t max_line = default_max_line;
  /// A connection that sends no complete line for this long is closed; zero waits forever.
  std::chrono::milliseconds idle_timeout{0};
  /// Names the program in "another <service> is already serving on PATH".
  std::string service = "process";
  /// What to do then, appended to that message.
  std::string already_running_hint = "stop it first";
};

class server {
 public:
  /// Binds and listens. Fails without leaving a socket behind: `ec::bad_config` (path empty or too
  /// long for a Unix socket), `ec::already_exists` (a live process answers on the path, or the path
  /// is not a socket), `ec::io_error`.
  static caf::expected<std::unique_ptr<server>> start(server_options opts, accept_fn on_accept);

  virtual ~server() = default;
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  virtual void stop() = 0;
  virtual const std::string& socket_path() const = 0;

 protected:
  server() = default;
};

/// The kernel's view of the peer of a connected Unix socket; nullopt when it cannot say.
std::optional<peer_identity> identify_peer(int fd);

}  // namespace certfleet::jsonl
