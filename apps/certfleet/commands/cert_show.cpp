// `certfleet cert show [--previous]`: the identity summary to send out of band, with the days left
// and whether renewal is due.
#include <iomanip>
#include <iostream>

#include "actors/renewal_schedule.hpp"
#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"

namespace certfleet::cli {
namespace {

struct cert_show_options {
  bool previous = false;
};

int run_cert_show(const context& ctx, const cert_show_options& o) {
  auto cfg = ctx.load();
  if (!cfg) return report(cfg.error());
  auto store = open_store(*cfg);
  if (!store) return report(store.error());
  if (o.previous) {
    auto id = store->load_previous();
    if (!id) return report(id.error());
    if (!*id)
      return report(
          make_error(ec::not_found, "there is no previous identity in " + store->dir().string()));
    return print_identity(ctx, **id, "Previous manager certificate");
  }
  auto id = store->load_current();
  if (!id) return report(id.error());
  // Days left and whether renewal is due, by the rules the daemon's renewal prompt follows.
  auto status =
      renewal_schedule{id->not_after(), id->sha256().to_string(), renewal_policy_of(*cfg)}.status(
          std::chrono::system_clock::now());
  if (ctx.json) {
    auto j = to_json(id->summary());
    j["days_left"] = status.days_left;
    j["renewal_due"] = status.renewal_due;
    j["expired"] = status.expired;
    j["renewal_due_at"] = status.due_at;
    std::cout << j.dump(2) << '\n';
    return exit_ok;
  }
  print_summary(std::cout, id->summary(), "Manager certificate");
  std::cout << "  " << std::left << std::setw(20) << "Days left:" << status.days_left
            << (status.expired ? " (expired)" : "") << '\n';
  std::cout << "  " << std::left << std::setw(20) << "Renewal due:"
            << (status.renewal_due
                    ? "yes, since " + status.due_at + "; renew it with 'certfleet cert renew'"
                    : "no, from " + status.due_at)
            << '\n';
  return exit_ok;
}

}  // namespace

void add_cert_show_command(CLI::App& cert, context& ctx) {
  auto o = std::make_shared<cert_show_options>();
  auto* cmd = add_command(cert, "show", "Print the current identity's summary", ctx,
                          [&ctx, o] { return run_cert_show(ctx, *o); });
  cmd->add_flag("--previous", o->previous, "Show the identity the current one replaced");
}

}  // namespace certfleet::cli
