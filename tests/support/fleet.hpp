// Test support: a simulated backup-server fleet (`certfleet-agent fleet`) as a child process.
//
// `agent_fleet` writes the admin password to <dir>/admin.pw (mode 0600), starts the fleet with its
// state in <dir>/fleet, waits for the fleet's manifest and reads its endpoints. The process is
// stopped when the object is destroyed. If the manifest does not appear within a minute, or does
// not list `count` endpoints, the constructor throws std::runtime_error with the fleet's log, which
// GoogleTest reports as the test's failure.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace certfleet::test {

struct fleet_endpoint {
  std::string address;  // "127.0.0.1"
  uint16_t port = 0;
  std::string thumbprint;

  /// "address:port", as `certfleet server add` takes it.
  std::string host_port() const { return address + ":" + std::to_string(port); }
};

class agent_fleet {
 public:
  agent_fleet(const std::filesystem::path& dir, int count, const std::string& admin_password,
              const std::vector<std::string>& extra_args = {});

  const std::vector<fleet_endpoint>& endpoints() const { return endpoints_; }
  child& process() { return *process_; }

 private:
  std::unique_ptr<child> process_;
  std::vector<fleet_endpoint> endpoints_;
};

}  // namespace certfleet::test
