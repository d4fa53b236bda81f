// The daemon's control socket: a Unix domain socket serving the JSON-lines protocol of
// docs/control-api.md on top of a running `manager`.
//
// Security: the socket's directory must be private (mode 0700, or 0710 with the read-only group as
// its group when `read_only_group` is set; a missing directory is created that way), and the
// socket is chmod 0600 (0660, group = read-only group) right after bind, before listen. Every
// connection's peer is identified with SO_PEERCRED and SO_PEERGROUPS: root and the daemon's uid
// get full access, members of the read-only group may only use status, server.list, server.show and
// events.subscribe, anyone else gets one error line and is disconnected. File permissions and the
// peer check are independent layers: either alone keeps strangers out.
//
// Threads: one acceptor thread plus one thread per connection (at most `max_clients`; one more
// gets an error line and is closed). A connection thread reads requests, calls the manager
// synchronously (each call is bounded by the manager's request_timeout) and writes replies. For
// `events.subscribe`, the bus's one bounded queue for the subscription is drained by its delivery
// thread straight into the socket (control/event_stream.hpp); the bus never blocks, and when the
// queue is full the client gets a cutoff line naming the last seq it was given, so it can resume
// with `since` without loss.
//
// Ownership and lifetime: the server borrows the manager, which must outlive it; call `stop()` (or
// destroy the server) before stopping the manager. `stop()` is idempotent and thread-safe: it
// closes the listener and every client, joins all threads and removes the socket file.
//
// Failure: `start` fails without leaving a socket behind, with `ec::bad_config` (unknown group,
// path too long), `ec::insecure_permissions` (directory mode or owner), `ec::already_exists`
// (another daemon answers on the socket, or the path is not a socket) or `ec::io_error`.
#pragma once

#include <memory>
#include <string>

#include "actors/manager.hpp"
#include "common/error.hpp"
#include "config/settings.hpp"

namespace certfleet::control {

struct server_options {
  /// Where to listen.
  std::string socket_path;
  /// A group whose members get read-only access; empty for none.
  std::string read_only_group;
  /// Connections served at once.
  size_t max_clients = 128;
  /// Events queued per subscriber before it is cut off.
  size_t subscriber_queue_lines = 10000;
};

/// The options `cfg` implies: daemon.control_socket (or <state_dir>/control.sock) and
/// daemon.read_only_group.
server_options options_from(const settings& cfg);

class control_server {
 public:
  static caf::expected<std::unique_ptr<control_server>> start(manager& m, server_options opts);

  virtual ~control_server() = default;
  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;

  /// Closes the listener and all connections, ends subscriptions and joins every thread.
  virtual void stop() = 0;

  virtual const std::string& socket_path() const = 0;

 protected:
  control_server() = default;
};

}  // namespace certfleet::control
