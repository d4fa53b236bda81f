// `certfleet server show ID`: everything about one server, including its inventory.
#include <iostream>

#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"

namespace certfleet::cli {
namespace {

struct server_show_options {
  std::string id;
};

/// "2026-11-29T07:00:00.000Z .. 2027-11-29T07:00:00.000Z (365 days left)", or "-" when unknown.
std::string certificate_validity(const json& server) {
  auto not_after = num(server, "certificate_not_after_ms");
  if (not_after == 0) return "-";
  auto text = utc_time(num(server, "certificate_not_before_ms")) + " .. " + utc_time(not_after);
  auto days = num(server, "certificate_days_left");
  text += days < 0 ? " (expired " + std::to_string(-days) + " days ago)"
                   : " (" + std::to_string(days) + " days left)";
  if (server.value("certificate_expiry_warned", false)) text += "; expiry warning raised";
  return text;
}

int run_server_show(const context& ctx, const server_show_options& o) {
  return with_client(ctx, [&](control::control_client& c) -> int {
    auto r = c.call("server.show", {{"id", o.id}});
    if (!r) return report(r.error());
    if (ctx.json) return print_result(ctx, *r, "");
    auto or_dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
    std::vector<std::vector<std::string>> rows{
        {"ID:", str(*r, "id")},
        {"Name:", str(*r, "name")},
        {"Address:", str(*r, "address")},
        {"State:", str(*r, "state")},
        {"Connected:", (*r)["connected"].get<bool>() ? "yes" : "no"},
        {"Account:", or_dash(str(*r, "account"))},
        {"Credentials retained:", (*r)["credentials_retained"].get<bool>() ? "yes (sealed)" : "no"},
        {"Expected thumbprint:", or_dash(str(*r, "expected_thumbprint"))},
        {"Presented thumbprint:", or_dash(str(*r, "presented_thumbprint"))},
        {"Pinned thumbprint:", or_dash(str(*r, "pinned_thumbprint"))},
        {"Validated by:", or_dash(str(*r, "validated_by"))},
        {"Remote id:", or_dash(str(*r, "remote_id"))},
        {"Certificate valid:", certificate_validity(*r)},
        {"Authentication:", or_dash(str(*r, "auth"))},
        {"Last error:", or_dash(str(*r, "last_error"))},
        {"Failed attempts:", std::to_string(num(*r, "failed_attempts"))},
        {"Last seen:", relative_time(num(*r, "last_seen_ms"))},
        {"Last collection:", relative_time(num(*r, "last_collection_ms"))},
    };
    print_table(rows);
    const auto& inv = (*r)["inventory"];
    std::cout << "Inventory:" << (inv.is_null() ? " none collected yet\n" : "\n");
    if (!inv.is_null()) std::cout << inv.dump(2) << '\n';
    return exit_ok;
  });
}

}  // namespace

void add_server_show_command(CLI::App& server, context& ctx) {
  auto o = std::make_shared<server_show_options>();
  add_command(server, "show", "Everything about one server, including its inventory", ctx,
              [&ctx, o] { return run_server_show(ctx, *o); })
      ->add_option("ID", o->id, "Server id")
      ->required();
}

}  // namespace certfleet::cli
