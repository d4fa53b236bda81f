// Every command line of README.md's code blocks that runs certfleet, certfleetd or
// certfleet-agent is accepted by that program's parser (--parse-only: parsed, not run), so the
// documentation cannot drift from the flags the programs take.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/support/process.hpp"
#include "tests/support/shell.hpp"

namespace certfleet::test {
namespace {

const std::vector<std::pair<std::string, std::string>> programs = {
    {"certfleet-agent", "apps/agent/certfleet-agent"},
    {"certfleetd", "apps/daemon/certfleetd"},
    {"certfleet", "apps/certfleet"},
};

/// The shell words of `line` up to its first unquoted comment, redirection or pipe, with the
/// brackets that mark optional parts ("[--name N]") removed.
std::string command_part(const std::string& line) {
  std::string out;
  char quote = 0;
  for (char c : line) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '#' || c == '>' || c == '<' || c == '|') {
      break;
    } else if (c == '[' || c == ']') {
      continue;
    }
    out += c;
  }
  return out;
}

/// The program lines of every fenced or indented code block, continuation lines joined.
std::vector<std::string> readme_command_lines() {
  std::ifstream in{std::string(CERTFLEET_SOURCE_DIR) + "/README.md"};
  std::vector<std::string> lines;
  std::string line, pending;
  bool fenced = false;
  while (std::getline(in, line)) {
    if (line.rfind("```", 0) == 0) {
      fenced = !fenced;
      continue;
    }
    bool indented = line.rfind("    ", 0) == 0;
    if (!fenced && !indented && pending.empty()) continue;
    auto start = line.find_first_not_of(' ');
    std::string text = start == std::string::npos ? "" : line.substr(start);
    pending += (pending.empty() ? "" : " ") + text;
    if (!pending.empty() && pending.back() == '\\') {
      pending.pop_back();
      continue;
    }
    for (const auto& [name, path] : programs)
      if (pending.rfind(name + " ", 0) == 0) {
        lines.push_back(pending);
        break;
      }
    pending.clear();
  }
  return lines;
}

TEST(readme_commands, every_documented_command_line_is_accepted) {
  auto lines = readme_command_lines();
  // The quick start, identity, daemon, server, events and agent sections hold at least this many.
  ASSERT_GE(lines.size(), 20u);
  for (const auto& line : lines) {
    std::string command = command_part(line);
    for (const auto& [name, path] : programs)
      if (command.rfind(name + " ", 0) == 0) {
        command = binary(path) + command.substr(name.size());
        break;
      }
    auto r = run_command(command + " --parse-only 2>&1");
    EXPECT_EQ(r.exit_code, 0) << "README: " << line << "\n" << r.output;
  }
}

}  // namespace
}  // namespace certfleet::test
