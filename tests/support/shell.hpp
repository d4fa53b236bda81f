// Test support: running a command line through the shell, for tests that need one.
//
// `run_command` passes `command` to /bin/sh (popen), so PATH lookup (openssl, ldb), redirections,
// `cd &&`, `ulimit` and `timeout` work, and returns the exit code with stdout and stderr captured
// as one interleaved stream, the order a user would see. Prefer `run` (process.hpp) for our own
// binaries: no shell, no quoting, stdout and stderr apart. A command killed by a signal, or a shell
// that could not be started, reports exit_code -1.
#pragma once

#include <string>

namespace certfleet::test {

struct command_result {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

/// Runs `command` through /bin/sh and waits for it; see the file comment.
command_result run_command(const std::string& command);

}  // namespace certfleet::test
