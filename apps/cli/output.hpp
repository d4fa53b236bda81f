// Output conventions shared by certfleet's command-line programs: certificate summaries in text
// and JSON, and error reporting. Exit codes live in common/exit_code.hpp (README.md, "Exit codes").
#pragma once

#include <iosfwd>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/exit_code.hpp"
#include "crypto/identity.hpp"

namespace certfleet::cli {

// The programs name exit codes as cli::exit_*; they are defined once, in common/.
using certfleet::exit_bad_config;
using certfleet::exit_code;
using certfleet::exit_code_for;
using certfleet::exit_failure;
using certfleet::exit_insecure;
using certfleet::exit_not_found;
using certfleet::exit_ok;
using certfleet::exit_refused;
using certfleet::exit_storage;
using certfleet::exit_unreachable;
using certfleet::exit_usage;

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
