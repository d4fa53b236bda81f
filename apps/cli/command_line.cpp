#include "apps/cli/command_line.hpp"

#include <iostream>

#include "apps/cli/output.hpp"
#include "apps/cli/version.hpp"

namespace certfleet::cli {
namespace {

/// The deepest subcommand the parse selected (the app itself when none).
const CLI::App* selected(const CLI::App& app) {
  const CLI::App* at = &app;
  for (;;) {
    auto subs = at->get_subcommands();
    if (subs.empty()) return at;
    at = subs.front();
  }
}

std::string path_of(const CLI::App* app) {
  std::string path;
  for (auto* at = app; at != nullptr; at = at->get_parent())
    path = at->get_name() + (path.empty() ? "" : " " + path);
  return path;
}

int usage_error(const std::string& program, const std::string& message) {
  return report(make_error(ec::invalid_argument, message + " (see '" + program + " --help')"),
                program);
}

}  // namespace

void prepare_app(CLI::App& app) {
  app.fallthrough();
  app.set_version_flag("--version", app.get_name() + " " + version,
                       "Print the program's version and exit");
}

void add_global_flags(CLI::App& app, global_flags& flags, unsigned which) {
  if (which & with_config)
    app.add_option("-c,--config", flags.config_file,
                   "TOML configuration file (default: built-in defaults, see "
                   "config/certfleet.example.toml)")
        ->check(CLI::ExistingFile);
  if (which & with_state_dir)
    app.add_option("-s,--state-dir", flags.state_dir,
                   "State directory (overrides state_dir from the configuration)");
  if (which & with_json)
    app.add_flag("--json", flags.json,
                 "Print machine-readable JSON instead of text; errors too, as one JSON object on "
                 "stderr");
  // Hidden (no group): parses the command line and exits 0 without running it.
  app.add_flag("--parse-only", flags.parse_only)->group("");
}

int parse_and_run(CLI::App& app, int argc, char** argv, const global_flags& flags,
                  const std::function<int()>& run, bool needs_command) {
  const std::string program = app.get_name();
  // --json must shape the errors of a command line that fails to parse, too.
  for (int i = 1; i < argc; ++i)
    if (std::string_view{argv[i]} == "--json") set_json_errors(true);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(program, e.what());
  }
  set_json_errors(flags.json);
  const CLI::App* leaf = selected(app);
  if (!run && (needs_command || leaf != &app)) {
    std::string choices;
    for (const auto* sub : leaf->get_subcommands([](const CLI::App*) { return true; }))
      choices += (choices.empty() ? "" : ", ") + sub->get_name();
    return usage_error(program, "'" + path_of(leaf) + "' needs a command: " + choices);
  }
  if (flags.parse_only) return exit_ok;
  return run ? run() : exit_ok;
}

}  // namespace certfleet::cli
