// What the manager does when a backup server refuses it with denied{reason, detail}: every reason
// code maps to either a blocked state (auth_failed: nothing is retried until an admin acts) or a
// retry with backoff, and to a `last_error` that says what happened and what to do. `server list`,
// `server show` and `status` show that text; the table is in docs/protocol.md, "denied.reason".
//
// Thread-safety: pure functions.
#pragma once

#include <string>

#include "protocol/messages.hpp"

namespace certfleet {

struct refusal_outcome {
  /// True: auth_failed (blocked until new credentials are given); false: retried with backoff.
  bool blocks = false;
  /// True when the retained credentials can never succeed and are destroyed.
  bool erase_credentials = false;
  /// For last_error, the log and the auth_failed event; the peer's detail escaped and bounded.
  std::string last_error;
};

/// The outcome of `d` for server `server_id`.
refusal_outcome interpret_denial(const wire::denied& d, const std::string& server_id);

}  // namespace certfleet
