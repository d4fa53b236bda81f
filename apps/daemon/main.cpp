// certfleetd: the manager daemon, in the foreground. Logs go to stderr (to journald, with fields,
// when stderr is the journal stream); SIGTERM or SIGINT drains and flushes; SIGHUP reloads the log
// settings from the configuration file. Under systemd it speaks sd_notify (systemd_notify.hpp).
#include <csignal>
#include <iostream>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "actors/manager.hpp"
#include "apps/cli/command_line.hpp"
#include "apps/cli/logging.hpp"
#include "apps/cli/output.hpp"
#include "apps/daemon/systemd_notify.hpp"
#include "control/control_server.hpp"
#include "metrics/exporter.hpp"

using namespace certfleet;

namespace {

caf::expected<settings> load(const std::string& config_file, const std::string& state_dir) {
  auto cfg = config_file.empty() ? parse_settings("", "<defaults>") : load_settings(config_file);
  if (cfg && !state_dir.empty()) cfg->state_dir = std::filesystem::absolute(state_dir);
  return cfg;
}

}  // namespace

int run_daemon(const cli::global_flags& flags);

int main(int argc, char** argv) {
  CLI::App app{
      "certfleetd: the certfleet manager daemon. Runs in the foreground; stop it with "
      "SIGTERM. Initialise the state directory first with 'certfleet init'.",
      "certfleetd"};
  cli::prepare_app(app);
  cli::global_flags flags;
  cli::add_global_flags(app, flags, cli::with_config | cli::with_state_dir | cli::with_json);
  return cli::parse_and_run(
      app, argc, argv, flags, [&flags] { return run_daemon(flags); }, false);
}

int run_daemon(const cli::global_flags& flags) {
  const std::string& config_file = flags.config_file;
  const std::string& state_dir = flags.state_dir;
  auto cfg = load(config_file, state_dir);
  if (!cfg) return cli::report(cfg.error(), "certfleetd");
  if (stderr_is_journal()) log_to_journal("certfleetd");
  if (auto err = cli::setup_logging(cfg->log)) return cli::report(err, "certfleetd");

  // Signals are taken synchronously by the main thread; every thread started below inherits the
  // blocked mask, so none of them is interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto m = manager::start(*cfg);
  if (!m) return cli::report(m.error(), "certfleetd");
  auto control = control::control_server::start(**m, control::options_from(*cfg));
  if (!control) {
    (*m)->stop();
    return cli::report(control.error(), "certfleetd");
  }
  std::unique_ptr<metrics::exporter> exporter;
  if (!cfg->metrics.listen.empty()) {
    auto started = metrics::exporter::start(**m, *cfg);
    if (!started) {
      (*control)->stop();
      (*m)->stop();
      return cli::report(started.error(), "certfleetd");
    }
    exporter = std::move(*started);
  }
  spdlog::info("certfleetd ready: state {}, control socket {}", cfg->state_dir.string(),
               (*control)->socket_path());
  systemd_notifier systemd;
  systemd.ready(**m);
  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      auto fresh = load(config_file, state_dir);
      if (!fresh) {
        spdlog::error("reload refused, keeping the running configuration: {}",
                      describe(fresh.error()));
        continue;
      }
      if (auto err = cli::setup_logging(fresh->log))
        spdlog::error("reload refused: {}", describe(err));
      else
        spdlog::info(
            "configuration reloaded (log level {}, format {}); other settings apply at "
            "the next start",
            fresh->log.level, fresh->log.format);
      continue;
    }
    spdlog::info("signal {} received: draining", sig);
    break;
  }
  systemd.stopping();
  exporter.reset();
  (*control)->stop();
  (*m)->stop();
  return cli::exit_ok;
}
