// `certfleet status`: counts of servers per state, handshakes, latency, last errors.
#include <iomanip>
#include <iostream>
#include <sstream>

#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"

namespace certfleet::cli {
namespace {

int run_status(const context& ctx) {
  return with_client(ctx, [&](control::control_client& c) -> int {
    auto s = c.call("status", json::object());
    if (!s) return report(s.error());
    if (ctx.json) return print_result(ctx, *s, "");
    std::cout << "certfleetd: " << num(*s, "servers") << " servers, " << num(*s, "connected")
              << " connected\n";
    std::vector<std::vector<std::string>> rows;
    for (auto& [state, count] : (*s)["per_state"].items())
      rows.push_back({"  " + state, std::to_string(count.get<int64_t>())});
    print_table(rows);
    std::cout << "Handshakes: " << num(*s, "handshakes") << " completed ("
              << num(*s, "resumed_handshakes") << " resumed), " << num(*s, "handshake_failures")
              << " failed; collections: " << num(*s, "collections") << '\n';
    auto latency = [&](const char* kind) {
      const auto& l = (*s)["latency"][kind];
      if (!l.is_object() || l.value("count", 0) == 0) return std::string("none yet");
      std::ostringstream o;
      o << std::fixed << std::setprecision(1) << "p50 " << l.value("p50_ms", 0.0) << " ms, p99 "
        << l.value("p99_ms", 0.0) << " ms, max " << l.value("max_ms", 0.0) << " ms";
      return o.str();
    };
    std::cout << "Latency: handshake " << latency("handshake") << "; collection "
              << latency("collection") << "\nLast event: #" << num(*s, "last_event_seq")
              << " (certfleet events --since N to read them)\n"
              << "Manager certificate: SHA-256 " << str(*s, "manager_thumbprint")
              << ", valid until " << str(*s, "manager_not_after") << " ("
              << (*s).value("manager_days_left", int64_t{0}) << " days left"
              << ((*s).value("manager_renewal_due", false)
                      ? "; renewal due: run 'certfleet cert renew'"
                      : "")
              << ")\n";
    if (auto n = (*s).value("server_certificates_expiring", int64_t{0}); n > 0)
      std::cout << "Server certificates: " << n
                << " expire within the warning window or have expired (earliest notAfter "
                << str(*s, "server_certificate_earliest_not_after")
                << "); 'certfleet events --type server_certificate_expiring' lists them\n";
    const auto& errors = (*s)["last_errors"];
    if (errors.is_array() && !errors.empty()) {
      std::cout << "Last errors (newest first):\n";
      for (const auto& e : errors) std::cout << "  " << e.get<std::string>() << '\n';
    }
    return exit_ok;
  });
}

}  // namespace

void add_status_command(CLI::App& parent, context& ctx) {
  add_command(parent, "status", "Counts of servers per state, handshakes, last errors", ctx,
              [&ctx] { return run_status(ctx); });
}

}  // namespace certfleet::cli
