// Prints the trust changes of a running certfleetd as they happen, through the control socket
// client library (control/control_client.hpp; protocol in docs/control-api.md).
//
//   subscribe_events /var/lib/certfleet/control.sock [--since SEQ] [--count N]
//
// Replays the stored trust changes after SEQ (default 0), then follows live ones; stops after N
// of them when --count is given. Built against an installed certfleet: see CMakeLists.txt here.
#include <cstdlib>
#include <iostream>
#include <set>
#include <string>

#include "control/control_client.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: subscribe_events SOCKET [--since SEQ] [--count N]\n";
    return 2;
  }
  uint64_t since = 0, count = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    (flag == "--since" ? since : count) = std::strtoull(argv[i + 1], nullptr, 10);
  }
  auto client = certfleet::control::control_client::connect(argv[1]);
  if (!client) {
    std::cerr << certfleet::describe(client.error()) << '\n';
    return 7;
  }
  // The events that change whether a server is trusted (docs/control-api.md lists them all).
  const std::set<std::string> trust_changes{"registered",          "validation_required",
                                            "validated",           "rejected",
                                            "certificate_changed", "certificate_mismatch"};
  uint64_t printed = 0;
  auto end =
      client->subscribe({{"since", since}, {"follow", true}}, [&](const nlohmann::json& event) {
        if (trust_changes.count(event.at("type").get<std::string>()) == 0) return true;
        std::cout << event.at("seq") << ' ' << event.at("type").get<std::string>() << ' '
                  << event.at("server_id").get<std::string>() << ' '
                  << event.at("address").get<std::string>() << ' ' << event.at("details").dump()
                  << std::endl;
        return count == 0 || ++printed < count;
      });
  if (!end) {
    std::cerr << certfleet::describe(end.error()) << '\n';
    return 7;
  }
  if (end->cut_off)
    std::cerr << "cut off after seq " << end->last_seq << ": " << end->reason << '\n';
  return 0;
}
