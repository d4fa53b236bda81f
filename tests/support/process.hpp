// Test support: real child processes for end-to-end tests (temp_dir, from temp_dir.hpp, comes along
// because every such test needs one).
//
// `child` starts a program with arguments, its stdout and stderr appended to a log file, and kills
// it (SIGTERM, then SIGKILL after a grace period) when destroyed. `run` runs a command to
// completion and captures its output and exit code. `wait_until` polls a condition with a deadline:
// the condition observes something real (a file, a socket, a command's output), never a sleep.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/support/temp_dir.hpp"

namespace certfleet::test {

struct run_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Runs `argv` to completion, feeding `input` to its stdin. No shell and no PATH search: argv[0]
/// is a path. stdout and stderr are captured apart; a child killed by a signal reports 128 + its
/// number. If the pipes cannot be created the result keeps exit_code -1.
run_result run(const std::vector<std::string>& argv, const std::string& input = "",
               const std::map<std::string, std::string>& env = {});

class child {
 public:
  child(std::vector<std::string> argv, std::filesystem::path log,
        const std::map<std::string, std::string>& env = {});
  ~child();
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  /// Sends `sig` and waits for the exit (up to `grace`, then SIGKILL). Returns the wait status.
  int stop(int sig = 15, std::chrono::milliseconds grace = std::chrono::seconds{10});
  /// The log written so far.
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::filesystem::path log_;
  int status_ = 0;
};

/// Polls `condition` every 20 ms until it holds or `timeout` passes. Returns whether it held.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and released).
uint16_t free_port();

/// `n` consecutive free ports starting at the returned one (best effort, checked by binding).
uint16_t free_port_range(int n);

/// Path of a built program ("apps/certfleet") under the build directory.
std::string binary(const std::string& relative);

/// The value bytes of every `0xKEY : 0xVALUE` line of `ldb ... scan --hex` output.
std::vector<std::string> ldb_values(const std::string& scan);

/// The stack of every thread of process `pid`, from gdb (for the message of a test that found the
/// process hanging); says so when gdb is not there.
std::string thread_stacks(pid_t pid);

/// Every regular file under `dir` whose raw bytes contain `needle`.
std::vector<std::filesystem::path> files_containing(const std::filesystem::path& dir,
                                                    const std::string& needle);

}  // namespace certfleet::test
