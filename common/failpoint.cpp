#include "common/failpoint.hpp"

#include <csignal>
#include <cstdlib>

#include <chrono>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

namespace certfleet::failpoint {
namespace {

struct registry {
  std::mutex mtx;
  std::unordered_map<std::string, std::function<void()>> actions;
};

registry& the_registry() {
  static registry r;
  return r;
}

/// Arms what CERTFLEET_FAILPOINTS names, before main: a test binary is armed from its first line.
const bool armed_from_environment = [] {
  if (const char* spec = std::getenv("CERTFLEET_FAILPOINTS"))
    if (auto err = arm_from_spec(spec)) {
      std::cerr << "CERTFLEET_FAILPOINTS: " << describe(err) << '\n';
      std::abort();
    }
  return true;
}();

}  // namespace

void hit(const char* name) {
  std::function<void()> action;
  {
    auto& r = the_registry();
    std::lock_guard<std::mutex> guard{r.mtx};
    auto it = r.actions.find(name);
    if (it == r.actions.end()) return;
    action = it->second;
  }
  action();
}

void arm(const std::string& name, std::function<void()> action) {
  auto& r = the_registry();
  std::lock_guard<std::mutex> guard{r.mtx};
  r.actions[name] = std::move(action);
}

void disarm(const std::string& name) {
  auto& r = the_registry();
  std::lock_guard<std::mutex> guard{r.mtx};
  r.actions.erase(name);
}

caf::error arm_from_spec(const std::string& spec) {
  std::istringstream in{spec};
  std::string entry;
  while (std::getline(in, entry, ',')) {
    if (entry.empty()) continue;
    auto eq = entry.find('=');
    if (eq == std::string::npos || eq == 0)
      return make_error(ec::invalid_argument,
                        "failpoint entry '" + entry + "' is not name=kill or name=sleep:MS");
    auto name = entry.substr(0, eq);
    auto action = entry.substr(eq + 1);
    if (action == "kill") {
      arm(name, [] { std::raise(SIGKILL); });
    } else if (action.rfind("sleep:", 0) == 0) {
      char* end = nullptr;
      auto ms = std::strtol(action.c_str() + 6, &end, 10);
      if (end == action.c_str() + 6 || *end != '\0' || ms < 0)
        return make_error(ec::invalid_argument,
                          "failpoint entry '" + entry + "': sleep needs milliseconds");
      arm(name, [ms] { std::this_thread::sleep_for(std::chrono::milliseconds{ms}); });
    } else {
      return make_error(ec::invalid_argument,
                        "failpoint entry '" + entry + "': the action is kill or sleep:MS");
    }
  }
  return {};
}

}  // namespace certfleet::failpoint
