// certfleet: the operator's command line for the manager.
#include <iostream>

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
      "servers.\nExit codes: 0 ok, 1 unexpected failure, 2 usage, 3 not found, 4 insecure "
      "permissions, 5 bad configuration, 6 storage failure, 7 unreachable, 8 refused.",
      "certfleet"};
  app.require_subcommand(1);
  context ctx;
  app.add_option("-c,--config", ctx.config_file,
                 "TOML configuration file (default: built-in "
                 "defaults, see config/certfleet.example.toml)")
      ->check(CLI::ExistingFile);
  app.add_option("-s,--state-dir", ctx.state_dir,
                 "State directory (overrides state_dir from the configuration)");
  app.add_flag("--json", ctx.json, "Print machine-readable JSON instead of text");
  add_identity_commands(app, ctx);
  add_server_commands(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? exit_ok : exit_usage;
  }
  return ctx.run ? ctx.run() : exit_usage;
}
