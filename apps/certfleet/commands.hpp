// The `certfleet` command line: global options and the registration of each command group.
//
// Each group adds its subcommands to the CLI11 app and sets `ctx.run` in their callbacks; main()
// parses, then calls `ctx.run` once, so every command returns an exit code from
// apps/cli/output.hpp.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "common/error.hpp"
#include "config/settings.hpp"

namespace certfleet::cli {

struct context {
  std::string config_file;  // empty: embedded defaults
  std::string state_dir;    // empty: from the configuration
  bool json = false;
  std::function<int()> run;

  /// The effective settings: the configuration file (if any) with --state-dir applied.
  caf::expected<settings> load() const;
};

/// `init`, `cert generate`, `cert show`, `cert export`.
void add_identity_commands(CLI::App& app, context& ctx);

/// `status`, `server list|show|add|trust|reject|remove|credentials`, `events`: clients of the
/// daemon's control socket (docs/control-api.md).
void add_server_commands(CLI::App& app, context& ctx);

}  // namespace certfleet::cli
