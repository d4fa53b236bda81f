// Which protocol version the manager speaks with a server, and what a server's hello says about
// it: certificate registration (version 2) for servers of this release, account credentials on
// every session (version 1) for servers of earlier releases (docs/protocol.md, "Version
// negotiation").
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>

#include "storage/records.hpp"

namespace certfleet {

/// The version the manager offers `rec` in its hello (the only one it then speaks on that
/// connection): the legacy version while the server is known to speak only that one.
uint8_t offered_version(const server_record& rec);

/// The highest version that both the manager (wire::min_protocol_version ..
/// wire::protocol_version) and a peer whose hello says [min_version, max_version] speak; nullopt
/// when there is none.
std::optional<uint8_t> common_version(uint8_t min_version, uint8_t max_version);

/// How the manager authenticates to a server that speaks `version`.
server_auth auth_for(uint8_t version);

inline bool is_legacy(const server_record& rec) {
  return rec.auth == server_auth::legacy_credentials;
}

}  // namespace certfleet
