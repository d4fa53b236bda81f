// `certfleet server list`: one row per server.
#include <iostream>

#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"

namespace certfleet::cli {
namespace {

std::string thumbprint_prefix(const json& server) {
  auto t = str(server, "pinned_thumbprint");
  if (t.empty()) t = str(server, "presented_thumbprint");
  return t.empty() ? "-" : t.substr(0, 16);
}

int run_server_list(const context& ctx) {
  return with_client(ctx, [&](control::control_client& c) -> int {
    auto r = c.call("server.list", json::object());
    if (!r) return report(r.error());
    const auto& servers = (*r)["servers"];
    if (ctx.json) return print_result(ctx, servers, "");
    if (servers.empty()) {
      std::cout << "No servers; add one with 'certfleet server add HOST --account USER "
                   "--password-stdin'\n";
      return exit_ok;
    }
    std::vector<std::vector<std::string>> rows{
        {"ID", "NAME", "ADDRESS", "STATE", "THUMBPRINT", "AUTH", "LAST SEEN", "LAST COLLECTION"}};
    for (const auto& s : servers)
      rows.push_back({str(s, "id"), str(s, "name"), str(s, "address"), str(s, "state"),
                      thumbprint_prefix(s), str(s, "auth"), relative_time(num(s, "last_seen_ms")),
                      relative_time(num(s, "last_collection_ms"))});
    print_table(rows);
    return exit_ok;
  });
}

}  // namespace

void add_server_list_command(CLI::App& server, context& ctx) {
  add_command(server, "list", "Table of servers: id, name, address, state, thumbprint, last seen",
              ctx, [&ctx] { return run_server_list(ctx); });
}

}  // namespace certfleet::cli
