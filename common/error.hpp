// certfleet's one error vocabulary.
//
// Every module returns `caf::expected<T>` or `caf::error` across its boundary; the error carries an
// `ec` code and a sentence for the user that says what happened and what to do. Botan exceptions
// and RocksDB statuses are translated into these at the edge of crypto/ and storage/.
//
// Thread-safety: all functions here are pure and safe to call from any thread.
#pragma once

#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/make_message.hpp>

namespace certfleet {

/// Error codes. Values are stable: they travel in control-socket replies and map to exit codes.
enum class ec : uint8_t {
  none = 0,
  /// A file or directory could not be read or written (the message names it and the errno text).
  io_error,
  /// A key file or store directory has permissions that let others read or write it.
  insecure_permissions,
  /// Something that must exist does not (a state dir, a store, a record).
  not_found,
  /// Something that must not exist yet does (init on an initialised state dir, a duplicate server).
  already_exists,
  /// Stored data failed to decode (unknown version, truncated record).
  corrupt_data,
  /// Authenticated decryption failed: the sealed blob was modified, truncated or belongs elsewhere.
  tampered,
  /// A thumbprint string could not be parsed.
  bad_thumbprint,
  /// A configuration file or option is invalid (the message names the key and line).
  bad_config,
  /// A cryptographic operation failed for a reason other than tampering.
  crypto_failure,
  /// The database reported an error.
  storage_failure,
  /// The disk is full; nothing was half-written.
  disk_full,
  /// A peer sent bytes that do not follow the wire protocol.
  protocol_error,
  /// A frame exceeded the configured maximum size.
  frame_too_large,
  /// The TLS layer failed (handshake, certificate, alert).
  tls_failure,
  /// A request was refused because of who asked (credentials, role, peer uid).
  permission_denied,
  /// An argument given by the user is invalid.
  invalid_argument,
  /// An operation did not complete before its deadline.
  timeout,
  /// The requested transition is not allowed in the current state.
  invalid_state,
};

/// Human-readable name of a code ("insecure_permissions").
const char* to_string(ec code);

/// Builds an error with `code` and a user-facing sentence `what`.
caf::error make_error(ec code, std::string what);

/// The user-facing sentence of `err`, or a generic text naming the code when there is none.
std::string describe(const caf::error& err);

/// The `ec` of `err`, or `ec::none` when `err` is empty or from another category.
ec code_of(const caf::error& err);

}  // namespace certfleet

CAF_ERROR_CODE_ENUM(certfleet::ec, "certfleet")
