// `certfleet cert status [--json]`: the progress of the last manager certificate rotation (N of M
// servers moved, which are pending and since when, which need registering again).
#include <sstream>

#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"

namespace certfleet::cli {
namespace {

std::string describe_rotation(const json& r) {
  std::ostringstream out;
  auto phase = str(r, "phase");
  if (phase == "none") return "The manager certificate was never renewed ('certfleet cert renew').";
  out << "Manager certificate rotation: " << phase << '\n'
      << "  old certificate:  " << str(r, "old_thumbprint") << " (valid until "
      << str(r, "old_not_after") << ")\n"
      << "  new certificate:  " << str(r, "new_thumbprint") << '\n'
      << "  started:          " << utc_time(num(r, "started_ms")) << '\n'
      << "  moved:            " << num(r, "moved") << " of " << num(r, "servers") << " servers\n";
  if (num(r, "completed_ms") > 0)
    out << "  completed:        " << utc_time(num(r, "completed_ms")) << " (old key destroyed)\n";
  if (num(r, "drops_owed") > 0)
    out << "  agents still to be told to drop the old certificate: " << num(r, "drops_owed")
        << " (at their next connection)\n";
  const auto& pending = r["pending"];
  if (!pending.empty()) {
    out << "  pending (they get the new certificate when they connect, until "
        << str(r, "old_not_after") << "):\n";
    std::vector<std::vector<std::string>> rows{{"    ID", "PENDING SINCE", "LAST REFUSAL"}};
    for (const auto& p : pending)
      rows.push_back(
          {"    " + str(p, "id"), relative_time(num(p, "since_ms")), str(p, "last_error")});
    std::cout << out.str();
    out.str({});
    print_table(rows);
  }
  const auto& missed = r["reregistration_required"];
  if (!missed.empty()) {
    out << "  missed the rotation (register each again with 'certfleet server credentials ID "
           "--account USER --password-stdin'):\n";
    for (const auto& id : missed) out << "    " << id.get<std::string>() << '\n';
  }
  auto text = out.str();
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

int run_cert_status(const context& ctx) {
  return with_client(ctx, [&](control_client& c) -> int {
    auto r = c.call("cert.status", json::object());
    if (!r) return report(r.error());
    if (ctx.json) return print_result(ctx, *r, "");
    auto text = describe_rotation(*r);
    if (!text.empty()) std::cout << text << '\n';
    return exit_ok;
  });
}

}  // namespace

void add_cert_status_command(CLI::App& cert, context& ctx) {
  add_command(cert, "status",
              "Progress of the manager certificate rotation: servers moved, pending, missed", ctx,
              [&ctx] { return run_cert_status(ctx); });
}

}  // namespace certfleet::cli
