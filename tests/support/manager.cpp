#include "tests/support/manager.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace certfleet::test {

std::map<std::string, std::string> faketime_env(const std::string& offset) {
  std::map<std::string, std::string> env;
  env["LD_PRELOAD"] = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
  env["FAKETIME"] = offset;
  env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1";
  // In the sanitizer build AddressSanitizer must come first among the loaded libraries;
  // libfaketime only wraps time functions, so the order check is waived for it.
  const char* asan = std::getenv("ASAN_OPTIONS");
  env["ASAN_OPTIONS"] =
      std::string{asan ? asan : ""} + (asan && *asan ? ":" : "") + "verify_asan_link_order=0";
  return env;
}

std::string manager_daemon::init(const std::string& extra_daemon_settings,
                                 const std::string& extra_tables) {
  {
    std::ofstream out{config()};
    out << "state_dir = \"" << state().string() << "\"\n[daemon]\n";
    // The test timings, each unless the extra settings give it (TOML refuses a key twice).
    for (const char* line : {"connect_timeout_ms = 1000", "handshake_timeout_ms = 2000",
                             "backoff_initial_ms = 100", "backoff_max_ms = 500"}) {
      std::string key = std::string{line}.substr(0, std::string{line}.find(' '));
      if (("\n" + extra_daemon_settings).find("\n" + key + " ") == std::string::npos)
        out << line << '\n';
    }
    out << extra_daemon_settings << extra_tables;
  }
  // With the config, so that init already uses its [identity] settings.
  auto r = run({binary("apps/certfleet"), "--config", config().string(), "init"});
  if (r.exit_code != 0) return "certfleet init: " + r.err;
  return "";
}

bool manager_daemon::start(const std::string& failpoints, std::map<std::string, std::string> env) {
  ::unlink((state() / "control.sock").c_str());
  if (!failpoints.empty()) env["CERTFLEET_FAILPOINTS"] = failpoints;
  process_ = std::make_unique<child>(
      std::vector<std::string>{
          binary(failpoints.empty() ? "apps/daemon/certfleetd" : "apps/daemon/certfleetd-testing"),
          "--config", config().string()},
      dir_ / "daemon.log", env);
  return wait_until([&] { return cli({"status"}).exit_code == 0; }, std::chrono::seconds{30});
}

int manager_daemon::stop(int sig) {
  if (!process_) return 0;
  auto status = process_->stop(sig);
  process_.reset();
  return status;
}

std::string manager_daemon::log() const {
  std::ifstream in{dir_ / "daemon.log"};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

run_result manager_daemon::cli(std::vector<std::string> args, const std::string& input) const {
  std::vector<std::string> argv{binary("apps/certfleet"), "--config", config().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, input);
}

nlohmann::json manager_daemon::cli_json(std::vector<std::string> args) const {
  args.insert(args.begin(), "--json");
  auto r = cli(args);
  if (r.exit_code != 0) return nlohmann::json::object();
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

}  // namespace certfleet::test
