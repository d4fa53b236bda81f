// `certfleet cert show [--previous]`: the identity summary to send out of band.
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
  return print_identity(ctx, *id, "Manager certificate");
}

}  // namespace

void add_cert_show_command(CLI::App& cert, context& ctx) {
  auto o = std::make_shared<cert_show_options>();
  auto* cmd = add_command(cert, "show", "Print the current identity's summary", ctx,
                          [&ctx, o] { return run_cert_show(ctx, *o); });
  cmd->add_flag("--previous", o->previous, "Show the identity the current one replaced");
}

}  // namespace certfleet::cli
