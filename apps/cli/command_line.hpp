// The command-line conventions shared by certfleet, certfleetd and certfleet-agent.
//
// Global flags (--json, -c/--config, -s/--state-dir, ...) are accepted before or after the
// subcommand; --version prints the project version; a usage error names what was not understood
// and exits 2; with --json every error is one JSON object on stderr ({"code", "message",
// "exit_code"}). A hidden --parse-only flag parses the whole command line and exits 0 without
// running anything: tests use it to check that every command line in the README is accepted.
//
// Thread-safety: none; called from main() only.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace certfleet::cli {

/// Flags every program takes. A program registers the ones it has with `add_global_flags`.
struct global_flags {
  std::string config_file;  // -c/--config; empty: embedded defaults
  std::string state_dir;    // -s/--state-dir; empty: from the configuration
  bool json = false;        // --json
  bool parse_only = false;  // --parse-only (hidden)
};

enum global_flag_set : unsigned {
  with_config = 1,
  with_state_dir = 2,
  with_json = 4,
};

/// Sets up `app` for the shared conventions: subcommands created after this call accept the
/// parent's flags after their own name, and --version prints "NAME VERSION". Call it before adding
/// subcommands.
void prepare_app(CLI::App& app);

/// Adds the flags of `which` (a `global_flag_set` mask), bound to `flags`, and the hidden
/// --parse-only.
void add_global_flags(CLI::App& app, global_flags& flags, unsigned which);

/// Parses argv and runs the command that the parse selected through `run` (set by a subcommand's
/// callback, or left empty for a program without subcommands when `needs_command` is false).
/// Returns the process exit code: 0 for --help and --version, 2 for a usage error (the unknown
/// flag or argument named; a missing subcommand named with the choices), otherwise run()'s.
int parse_and_run(CLI::App& app, int argc, char** argv, const global_flags& flags,
                  const std::function<int()>& run, bool needs_command = true);

}  // namespace certfleet::cli
