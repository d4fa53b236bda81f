// The agent's sockets: listening on an address and naming a peer, for the event loop
// (agent/event_loop.hpp). Plain POSIX, nonblocking, close-on-exec.
//
// Failures: `open_listener` returns `ec::invalid_argument` for an address that is not an IP literal
// and `ec::io_error` naming the address and the errno text otherwise; it leaves nothing open then.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "common/error.hpp"

namespace certfleet::agent {

/// An IPv4 or IPv6 literal and a port; port 0 asks the kernel for a free one (the bound port is
/// then reported by `agent_server::address` and reused when the endpoint comes back online).
struct listen_address {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
};

/// "127.0.0.1:9401", "[::1]:9401".
std::string endpoint_text(const listen_address& a);
/// The address of an accepted peer, formatted like `endpoint_text`.
std::string peer_text(const sockaddr_storage& ss);
/// The address of an accepted peer without its port ("127.0.0.1", "::1"): what per-source
/// limits count by.
std::string source_text(const sockaddr_storage& ss);
/// Creates a nonblocking listening socket on `a`, filling in the bound port when it was 0.
caf::expected<int> open_listener(listen_address& a);

}  // namespace certfleet::agent
