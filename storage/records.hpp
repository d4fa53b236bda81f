// The records certfleet keeps, and their versioned binary encoding.
//
// Every encoded record starts with a one-byte format version; decoding an unknown version or a
// truncated record fails with `ec::corrupt_data` instead of guessing. These types are plain values
// shared by storage/ and actors/; they hold no secrets (credentials are stored only sealed).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "crypto/thumbprint.hpp"

namespace certfleet {

/// The persisted lifecycle state of one backup server (see actors/server_actor.hpp for the
/// diagram).
enum class server_state : uint8_t {
  pending_registration = 1,  // credentials retained (sealed), waiting to reach the server
  registering = 2,           // credentials sent, waiting for the answer
  awaiting_validation = 3,   // the server presented a thumbprint; an admin must validate it
  trusted = 4,               // thumbprint pinned; mutual TLS from now on
  certificate_changed = 5,   // the server presented a thumbprint other than the pin: blocked
  certificate_mismatch = 6,  // the presented thumbprint differs from the one given in advance
  auth_failed = 7,           // the server denied the registration
  removed = 8,
  /// The old manager certificate expired before this server received its successor
  /// (docs/lifecycle.md): not contacted until `server credentials` registers it again.
  reregistration_required = 9,
};

const char* to_string(server_state s);
/// Parses the names printed by `to_string`; `ec::invalid_argument` otherwise.
caf::expected<server_state> parse_server_state(const std::string& s);

/// How the manager authenticates to a server once it is trusted.
enum class server_auth : uint8_t {
  /// Mutual TLS with the manager's registered certificate: no credentials kept.
  certificates = 0,
  /// A server of an earlier version (protocol version 1) that has no certificate registration:
  /// each session logs in with the account credentials, kept sealed while it stays legacy.
  legacy_credentials = 1,
};

/// "certificates", "credentials (legacy)": what `server list` and `server show` print.
const char* to_string(server_auth a);

struct server_record {
  std::string id;  // manager-assigned, stable ("s-1f3a9c2e")
  std::string name;
  std::string host;
  uint16_t port = 0;
  server_state state = server_state::pending_registration;
  std::string account;                  // the registration account's name (not a secret)
  std::optional<thumbprint> expected;   // given in advance, verified out of band
  std::optional<thumbprint> presented;  // what the server last presented
  std::optional<thumbprint> pinned;     // validated by an admin, the expected value, or tofu
  std::string validated_by;             // "admin", "expected", "tofu"
  std::string remote_id;                // the id the backup server reported at registration
  std::string last_error;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t last_seen_ms = 0;
  int64_t last_collection_ms = 0;
  uint32_t failed_attempts = 0;
  // The validity period of the certificate the server last presented (`presented`), in unix ms,
  // recorded at registration and at every handshake; 0 while not known (records from before they
  // were kept, or no certificate seen yet).
  int64_t certificate_not_before_ms = 0;
  int64_t certificate_not_after_ms = 0;
  /// The certificate whose `server_certificate_expiring` event was raised (once per certificate).
  std::optional<thumbprint> expiry_warned;
  server_auth auth = server_auth::certificates;
};

std::vector<uint8_t> encode(const server_record& r);
caf::expected<server_record> decode_server_record(const std::vector<uint8_t>& bytes);

/// A durable trust-change event. `seq` is assigned by the store: gap-free, starting at 1.
struct event_record {
  uint64_t seq = 0;
  int64_t time_ms = 0;
  std::string type;  // "server_added", "certificate_changed", ... (docs/control-api.md)
  std::string server_id;
  std::string address;  // "host:port"
  std::string details;  // a JSON object as text; never holds secrets
};

std::vector<uint8_t> encode(const event_record& e);
caf::expected<event_record> decode_event_record(const std::vector<uint8_t>& bytes);

}  // namespace certfleet
