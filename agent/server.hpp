// The agent's network side: plain epoll, one thread per core, serving any number of endpoints
// (one for `certfleet-agent run`, thousands for `certfleet-agent fleet`).
//
// Each thread owns a share of the endpoints (endpoint i belongs to thread i % threads) with their
// listening sockets and every connection accepted from them, so an endpoint and its connections
// are only ever touched by one thread and need no locks. Per connection: a `tls_server_session`
// (sharing the endpoint's `tls_session_cache`, so session tickets resume), the endpoint's
// `connection_logic`, a nonblocking output buffer, and two deadlines:
//   handshake  counted from accept (default 10 s): a client that connects and sends nothing, or
//              trickles bytes, is dropped when it passes, however active it looks;
//   idle       counted from the last byte received once established (default 5 min).
// Deadlines are checked every 100 ms (or sooner when a delayed output is due), so a stalled
// client costs one map entry and never delays anyone else.
//
// Code: agent/event_loop.* (the threads, connections and deadlines), agent/listener.* (sockets),
// agent/faults.* (fault injection), this file (the public face and cross-thread requests).
//
// Faults (`apply_fault`) and revocations run on the owning thread: the caller's request is queued
// to that thread (eventfd wake-up) and the call waits for its result, so they are safe to call
// from any other thread (the control socket, tests) but never from a callback of this server.
//
// Failures: `start` fails when a listening socket cannot be made (naming the address and the
// errno text) and then leaves nothing open. Refused or failed connections are logged (spdlog,
// stderr) with their reason and never affect other connections.
//
// Thread-safety: `start`, `stop` and the destructor from one controlling thread; everything else
// from any thread except this server's own callbacks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/endpoint.hpp"
#include "agent/faults.hpp"
#include "agent/listener.hpp"
#include "common/error.hpp"
#include "protocol/frame.hpp"

namespace certfleet::agent {

struct server_options {
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds idle_timeout{300'000};
  size_t threads = 2;
  size_t max_frame_size = default_max_frame_size;
  /// After the TLS handshake, a client that is not a registered manager must have registered
  /// within this time, or it is refused with denied{not_registered} and closed.
  std::chrono::milliseconds registration_timeout{10'000};
  /// Once a message's first byte has arrived, the whole message must arrive within this time
  /// (a peer trickling bytes is dropped however active it looks).
  std::chrono::milliseconds message_timeout{10'000};
  /// Connections not yet known as a registered manager's (handshaking or registering), per
  /// event-loop thread: in total, and from one source address. Over a cap, the oldest such
  /// connection is closed to make room for the new one.
  size_t max_unregistered = 512;
  size_t max_unregistered_per_source = 256;
};

class agent_server {
 public:
  /// `addresses[i]` is where `endpoints[i]` listens; both vectors have the same size.
  agent_server(server_options options, std::vector<std::unique_ptr<endpoint>> endpoints,
               std::vector<listen_address> addresses);
  ~agent_server();
  agent_server(const agent_server&) = delete;
  agent_server& operator=(const agent_server&) = delete;

  /// Binds every listening socket (except offline endpoints'), then starts the threads.
  caf::error start();
  /// Stops the threads and closes every socket. Idempotent.
  void stop();

  size_t size() const;
  /// Where endpoint `i` listens (the bound port once started).
  listen_address address(size_t i) const;
  /// The SHA-256 thumbprint endpoint `i` presents now.
  thumbprint current_thumbprint(size_t i) const;
  /// Connections currently open, over all endpoints.
  size_t connection_count() const;

  /// Applies `cmd` to endpoint `i` on its thread and waits. Errors: `ec::invalid_argument` for an
  /// index out of range; `online` fails like `start` when the address cannot be bound again;
  /// `regenerate` fails when the endpoint has no regenerate hook or making the identity fails.
  caf::error apply_fault(size_t i, const fault_command& cmd);
  /// The same for every endpoint; the first error is returned, the others logged.
  caf::error apply_fault_all(const fault_command& cmd);
  /// Revokes a manager of endpoint `i` and closes its open connections; false when unknown.
  caf::expected<bool> revoke_manager(size_t i, const thumbprint& t);
  /// The registered managers of endpoint `i`, read on its thread.
  caf::expected<std::vector<thumbprint>> managers(size_t i);

  /// Called on an endpoint's thread after its identity changed (e.g. to rewrite a manifest).
  /// Set before `start`.
  std::function<void(size_t index)> on_identity_changed;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace certfleet::agent
