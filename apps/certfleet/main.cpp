// certfleet: the operator's command line for the manager.
#include "apps/certfleet/commands.hpp"
#include "apps/cli/output.hpp"

namespace certfleet::cli {

caf::expected<settings> context::load() const {
  auto cfg = config_file.empty() ? parse_settings("", "<defaults>") : load_settings(config_file);
  if (!cfg) return cfg;
  if (!state_dir.empty()) cfg->state_dir = std::filesystem::absolute(state_dir);
  return cfg;
}

}  // namespace certfleet::cli

int main(int argc, char** argv) {
  using namespace certfleet::cli;
  CLI::App app{
      "certfleet: manage certificate-based trust between this manager and its backup "
      "servers.\nGlobal flags may come before or after the command.\nExit codes: 0 ok, 1 "
      "unexpected failure, 2 usage, 3 not found, 4 insecure permissions, 5 bad configuration, "
      "6 storage failure, 7 unreachable, 8 refused.",
      "certfleet"};
  prepare_app(app);
  context ctx;
  add_global_flags(app, ctx, with_config | with_state_dir | with_json);
  app.add_option("--socket", ctx.socket,
                 "Control socket of certfleetd (default: daemon.control_socket, or "
                 "<state_dir>/control.sock)");

  add_init_command(app, ctx);
  auto* cert = app.add_subcommand("cert", "The manager's own certificate");
  add_cert_generate_command(*cert, ctx);
  add_cert_show_command(*cert, ctx);
  add_cert_export_command(*cert, ctx);
  add_cert_renew_command(*cert, ctx);
  add_cert_status_command(*cert, ctx);

  add_status_command(app, ctx);
  add_events_command(app, ctx);
  auto* server = app.add_subcommand("server", "Backup servers managed by certfleetd");
  add_server_list_command(*server, ctx);
  add_server_show_command(*server, ctx);
  add_server_add_command(*server, ctx);
  add_server_trust_command(*server, ctx);
  add_server_reject_command(*server, ctx);
  add_server_remove_command(*server, ctx);
  add_server_credentials_command(*server, ctx);

  return parse_and_run(app, argc, argv, ctx, ctx.run);
}
