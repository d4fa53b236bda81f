// Output conventions shared by certfleet's command-line programs: exit codes, certificate
// summaries in text and JSON, and error reporting.
//
// Exit codes (documented in README.md, "Exit codes"):
//   0 success
//   1 unexpected failure (a bug: please report it)
//   2 usage error or invalid argument (bad flag, malformed thumbprint)
//   3 not found (state directory not initialised, unknown server)
//   4 insecure permissions on a key, key file or directory
//   5 invalid configuration file
//   6 storage or file-system failure (including a full disk, corrupt or tampered data)
//   7 peer or daemon unreachable, TLS or protocol failure, timeout
//   8 refused (permission denied, or not allowed in the current state)
#pragma once

#include <iosfwd>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "crypto/identity.hpp"

namespace certfleet::cli {

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

/// The exit code for an error, per the table above.
int exit_code_for(const caf::error& err);

/// Prints "certfleet: <message>" to stderr and returns the matching exit code. In JSON mode
/// (`set_json_errors`) it prints one line {"code", "message", "exit_code", "program"} instead,
/// `code` being the error code's name (common/error.hpp) or "usage".
int report(const caf::error& err, const std::string& program = "certfleet");

/// Switches `report` to JSON (the --json flag). Process-wide: called from main() only.
void set_json_errors(bool on);

/// Whether `report` prints JSON.
bool json_errors();

nlohmann::json to_json(const certificate_summary& s);

/// The human summary: meant to be copied and sent to the other side for out-of-band checks.
void print_summary(std::ostream& out, const certificate_summary& s, const std::string& heading);

}  // namespace certfleet::cli
