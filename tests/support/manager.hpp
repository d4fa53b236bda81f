// Test support: a manager under test as real processes. `manager_daemon` runs `certfleet init` on
// a state directory, writes a config with short connect, handshake and backoff timings (so
// end-to-end tests see retries within seconds), starts `certfleetd` as a child process and points
// the real CLI at it.
#pragma once

#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"

namespace certfleet::test {

/// The environment that runs a program with its clock `offset` ahead ("+11d"): libfaketime
/// preloaded into the process itself (the faketime wrapper would not pass on a SIGTERM); the
/// monotonic clock stays real, so timers and deadlines are unaffected.
std::map<std::string, std::string> faketime_env(const std::string& offset);

class manager_daemon {
 public:
  /// The state goes to `dir`/mgr, the config to `dir`/certfleet.toml, the log to `dir`/daemon.log.
  explicit manager_daemon(std::filesystem::path dir) : dir_(std::move(dir)) {}

  /// The config and `certfleet init`: `extra_daemon_settings` (TOML lines of the [daemon] table,
  /// "key = value"), the test timings it does not set, then `extra_tables` (whole TOML tables,
  /// e.g. "[identity]\nvalidity_days = 10\n"). Returns the failure, or "" when both worked.
  std::string init(const std::string& extra_daemon_settings = "",
                   const std::string& extra_tables = "");

  /// Starts certfleetd (the test build with its failpoints when `failpoints` is not empty, see
  /// common/failpoint.hpp) and waits up to 30 s for the control socket to answer. Returns whether
  /// it did; the log says why not.
  bool start(const std::string& failpoints = "", std::map<std::string, std::string> env = {});
  /// Sends `sig` and waits for the exit; returns the wait status (0 when nothing ran).
  int stop(int sig = SIGTERM);
  child& process() { return *process_; }
  /// Forgets a daemon that has exited on its own (a failpoint, a refusal to start).
  void release() { process_.reset(); }
  std::string log() const;

  run_result cli(std::vector<std::string> args, const std::string& input = "") const;
  /// `certfleet --json ARGS` parsed; an empty object when it failed or printed no JSON.
  nlohmann::json cli_json(std::vector<std::string> args) const;
  nlohmann::json status() const { return cli_json({"status"}); }

  std::filesystem::path state() const { return dir_ / "mgr"; }
  std::filesystem::path config() const { return dir_ / "certfleet.toml"; }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<child> process_;
};

}  // namespace certfleet::test
