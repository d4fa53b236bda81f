// The application messages exchanged inside the TLS channel between the manager and a backup
// server agent (docs/protocol.md is the reference; keep the two in step).
//
// Every payload is: u8 protocol version (1) | u8 message type | the type's fields, encoded with
// common/bytes.hpp (big-endian integers, u32-length-prefixed strings). Each type has one fixed
// schema: decoding reads the version and type, then exactly that type's fields, and fails with
// `ec::protocol_error` on an unknown version or type, a truncated field, a string or list above its
// cap, an unknown enum value, or bytes left over. Nothing in the peer's input selects code to run
// beyond the closed set of types below.
//
// Secrets: `register_request::password` is `secret_bytes` and is decoded straight into secure
// memory; `encode` returns `secret_bytes` for every message so that no plaintext password is ever
// held in an ordinary vector on the way out.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "common/error.hpp"
#include "crypto/secret.hpp"
#include "crypto/thumbprint.hpp"

namespace certfleet::wire {

/// The only protocol version this build speaks.
inline constexpr uint8_t protocol_version = 1;

/// Type numbers are stable: they are on the wire. 32..47 are reserved for certificate rotation
/// (e.g. `rotate_manager_cert` {new_thumbprint}); a decoder of this version refuses them.
enum class message_type : uint8_t {
  hello = 1,
  register_request = 2,
  registered = 3,
  denied = 4,
  collect = 5,
  inventory = 6,
  ping = 7,
  pong = 8,
  error = 9,
};
inline constexpr uint8_t first_reserved_rotation_type = 32;
inline constexpr uint8_t last_reserved_rotation_type = 47;

/// Caps on peer-controlled sizes, checked before anything is allocated.
inline constexpr size_t max_name_length = 256;  // peer, account, manager, server id names
inline constexpr size_t max_password_length = 1024;
inline constexpr size_t max_text_length = 4096;  // denial details, error texts
inline constexpr size_t max_job_field_length = 256;
inline constexpr size_t max_inventory_jobs = 4096;

/// First message from each side after the TLS handshake: the versions it speaks, and its name.
struct hello {
  uint8_t min_version = protocol_version;
  uint8_t max_version = protocol_version;
  std::string peer_name;
};

/// Manager -> server: register this manager with an account of the backup server.
struct register_request {
  std::string account;
  secret_bytes password;
  thumbprint manager_thumbprint;  // what the manager presents in TLS; the server pins it
  std::string manager_name;
};

/// Server -> manager: registration accepted.
struct registered {
  thumbprint server_thumbprint;
  std::string server_id;
};

enum class denial_reason : uint8_t {
  bad_credentials = 1,
  insufficient_role = 2,
  thumbprint_mismatch = 3,
  locked_out = 4,
  not_accepting = 5,
  internal_error = 6,
  /// The client certificate is not a registered manager's and the request is not a registration.
  not_registered = 7,
  /// The manager's registration was revoked on the backup server while it was connected.
  manager_revoked = 8,
  /// A message out of order or one the receiver never accepts (e.g. `collect` before `hello`).
  protocol_violation = 9,
  /// No protocol version in common (`hello` ranges do not overlap).
  unsupported_version = 10,
  /// The backup server's own certificate changed; its sessions made with the old one end.
  certificate_changed = 11,
};
/// The highest `denial_reason` value this build knows; larger values are refused on decoding.
constexpr denial_reason last_denial_reason = denial_reason::certificate_changed;
const char* to_string(denial_reason r);

/// Server -> manager: registration refused, and why.
struct denied {
  denial_reason reason = denial_reason::internal_error;
  std::string detail;
};

/// Manager -> server: send your job inventory.
struct collect {};

struct job_summary {
  std::string name;
  std::string type;         // "full", "incremental", ... as the backup server names it
  std::string last_result;  // "success", "warning", "failed", ...
  int64_t last_run_unix_ms = 0;
  uint64_t size_bytes = 0;
};

/// Server -> manager: answer to `collect`; at most `max_inventory_jobs` jobs.
struct inventory {
  std::vector<job_summary> jobs;
};

struct ping {
  uint64_t nonce = 0;
};

struct pong {
  uint64_t nonce = 0;
};

/// Either side: a request could not be served. `code` is an `ec` value as a number.
struct error_message {
  uint16_t code = 0;
  std::string text;
};

using message = std::variant<hello, register_request, registered, denied, collect, inventory, ping,
                             pong, error_message>;

/// The wire type number of `m`.
message_type type_of(const message& m);
/// "hello", "register_request", ...
const char* to_string(message_type t);

/// Encodes `m` as a payload (not yet framed). Fails with `ec::invalid_argument` when a string or
/// list exceeds its cap, so that nothing this side sends is refused by the peer for its size.
caf::expected<secret_bytes> encode(const message& m);

/// Decodes one payload; see the file comment for the errors.
caf::expected<message> decode(const uint8_t* data, size_t size);

/// Field-wise equality, so that messages (and `message` variants) compare in tests and logic.
bool operator==(const hello& a, const hello& b);
bool operator==(const register_request& a, const register_request& b);
bool operator==(const registered& a, const registered& b);
bool operator==(const denied& a, const denied& b);
bool operator==(const collect& a, const collect& b);
bool operator==(const job_summary& a, const job_summary& b);
bool operator==(const inventory& a, const inventory& b);
bool operator==(const ping& a, const ping& b);
bool operator==(const pong& a, const pong& b);
bool operator==(const error_message& a, const error_message& b);

}  // namespace certfleet::wire
