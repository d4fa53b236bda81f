// Test support: a loopback TCP port nothing listens on, for connects that must fail at once.
//
// The socket is bound to 127.0.0.1 on a kernel-chosen port and never listened on, so while the
// object lives no other test can take the port and every connect to it is refused immediately
// (ECONNREFUSED), without a timeout. If the socket cannot be created or bound the constructor
// throws std::system_error, which GoogleTest reports as the test's failure.
#pragma once

#include <cstdint>

namespace certfleet::test {

/// A loopback port that refuses every connect while this object lives.
class dead_port {
 public:
  dead_port();
  ~dead_port();
  dead_port(const dead_port&) = delete;
  dead_port& operator=(const dead_port&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace certfleet::test
