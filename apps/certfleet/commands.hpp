// The `certfleet` command line: the context every command shares and one registration function
// per command (apps/certfleet/commands/<command>.cpp).
//
// Each registration adds its subcommand to `parent` with an options struct of its own, owned by
// the subcommand's callback; the callback sets `ctx.run`, and main() calls it once after the
// parse. Every command returns an exit code from apps/cli/output.hpp.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "apps/cli/command_line.hpp"
#include "common/error.hpp"
#include "config/settings.hpp"

namespace certfleet::cli {

/// The global flags, accepted before or after the subcommand.
struct context : global_flags {
  std::string socket;  // --socket; empty: daemon.control_socket, or <state_dir>/control.sock
  std::function<int()> run;

  /// The effective settings: the configuration file (if any) with --state-dir applied.
  caf::expected<settings> load() const;
};

// The manager's identity (no daemon needed).
void add_init_command(CLI::App& parent, context& ctx);
void add_cert_generate_command(CLI::App& cert, context& ctx);
void add_cert_show_command(CLI::App& cert, context& ctx);
void add_cert_export_command(CLI::App& cert, context& ctx);
void add_cert_renew_command(CLI::App& cert, context& ctx);   // needs the daemon
void add_cert_status_command(CLI::App& cert, context& ctx);  // needs the daemon

// Clients of the daemon's control socket (docs/control-api.md).
void add_status_command(CLI::App& parent, context& ctx);
void add_events_command(CLI::App& parent, context& ctx);
void add_server_list_command(CLI::App& server, context& ctx);
void add_server_show_command(CLI::App& server, context& ctx);
void add_server_add_command(CLI::App& server, context& ctx);
void add_server_trust_command(CLI::App& server, context& ctx);
void add_server_reject_command(CLI::App& server, context& ctx);
void add_server_remove_command(CLI::App& server, context& ctx);
void add_server_credentials_command(CLI::App& server, context& ctx);

}  // namespace certfleet::cli
