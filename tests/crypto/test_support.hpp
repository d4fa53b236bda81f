// Helpers shared by the crypto tests: a private temp directory, running the real openssl CLI
// (run_command, tests/support/shell.hpp) and small file helpers.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/shell.hpp"
#include "tests/support/temp_dir.hpp"

namespace certfleet::testing {

using ::certfleet::test::command_result;
using ::certfleet::test::run_command;
using ::certfleet::test::temp_dir;

inline void write_text_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

inline mode_t mode_of(const std::filesystem::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

}  // namespace certfleet::testing
