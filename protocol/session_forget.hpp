// Forgetting a server's resumable client session, for when the manager starts presenting another
// certificate to it: a resumed session carries the certificate of its full handshake, so keeping
// it would go on presenting the old one.
#pragma once

#include <cstdint>
#include <string>

#include "protocol/tls_session_cache.hpp"

namespace certfleet {

/// Removes the client session kept for `host:port`, if any. Thread-safe like the cache.
void forget_client_session(tls_session_cache& cache, const std::string& host, uint16_t port);

}  // namespace certfleet
