// Process exit codes of every certfleet program, and the one mapping from an error to its code.
// The control socket carries the same number in each error reply (docs/control-api.md), so the
// daemon, the CLI and scripts agree on it.
//
//   0 success
//   1 unexpected failure (a bug: please report it)
//   2 usage error or invalid argument (bad flag, malformed thumbprint)
//   3 not found (state directory not initialised, unknown server)
//   4 insecure permissions on a key, key file or directory
//   5 invalid configuration file
//   6 storage or file-system failure (including a full disk, corrupt or tampered data)
//   7 peer or daemon unreachable, TLS or protocol failure, timeout
//   8 refused (permission denied, or not allowed in the current state)
//
// Thread-safety: pure functions.
#pragma once

#include "common/error.hpp"

namespace certfleet {

enum exit_code : int {
  exit_ok = 0,
  exit_failure = 1,
  exit_usage = 2,
  exit_not_found = 3,
  exit_insecure = 4,
  exit_bad_config = 5,
  exit_storage = 6,
  exit_unreachable = 7,
  exit_refused = 8,
};

/// The exit code for an error, per the table above; `exit_ok` for an empty error.
exit_code exit_code_for(const caf::error& err);

}  // namespace certfleet
