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

/// Type numbers are stable: they are on the wire. 32..39 are the manager certificate rotation
/// (32..36 defined, 37..39 reserved for it); 40..47 stay reserved; a decoder refuses every
/// number it does not define.
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
  rotate_manager_certificate = 32,
  manager_certificate_stored = 33,
  retire_manager_certificate = 34,
  manager_certificate_retired = 35,
  rotation_refused = 36,
};
inline constexpr uint8_t first_reserved_rotation_type = 32;
inline constexpr uint8_t last_reserved_rotation_type = 47;

/// Caps on peer-controlled sizes, checked before anything is allocated.
inline constexpr size_t max_name_length = 256;  // peer, account, manager, server id names
inline constexpr size_t max_password_length = 1024;
inline constexpr size_t max_text_length = 4096;  // denial details, error texts
inline constexpr size_t max_job_field_length = 256;
inline constexpr size_t max_inventory_jobs = 4096;
inline constexpr size_t max_certificate_length = 16384;  // a manager certificate's DER

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

/// Manager -> server, over a session authenticated by a registered manager certificate: store
/// `certificate_der` as this manager's next certificate, beside the one of this session.
struct rotate_manager_certificate {
  std::vector<uint8_t> certificate_der;
};

/// Server -> manager: the certificate with this thumbprint is stored durably and accepted from now
/// on (the answer to `rotate_manager_certificate`).
struct manager_certificate_stored {
  thumbprint stored;
};

/// Manager -> server, over a session authenticated by the successor certificate: forget the
/// manager certificate `retired`, which this session's certificate replaced.
struct retire_manager_certificate {
  thumbprint retired;
};

/// Server -> manager: `retired` is no longer a registered manager certificate.
struct manager_certificate_retired {
  thumbprint retired;
};

/// Server -> manager: a rotation request (`request`: 32 or 34) was refused; the session stays up.
struct rotation_refused {
  message_type request = message_type::rotate_manager_certificate;
  std::string detail;
};

using message =
    std::variant<hello, register_request, registered, denied, collect, inventory, ping, pong,
                 error_message, rotate_manager_certificate, manager_certificate_stored,
                 retire_manager_certificate, manager_certificate_retired, rotation_refused>;

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
bool operator==(const rotate_manager_certificate& a, const rotate_manager_certificate& b);
bool operator==(const manager_certificate_stored& a, const manager_certificate_stored& b);
bool operator==(const retire_manager_certificate& a, const retire_manager_certificate& b);
bool operator==(const manager_certificate_retired& a, const manager_certificate_retired& b);
bool operator==(const rotation_refused& a, const rotation_refused& b);

}  // namespace certfleet::wire
