// `certfleet cert export [-o FILE]`: the current certificate as PEM, without its key.
#include <iostream>

#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"
#include "common/fs.hpp"

namespace certfleet::cli {
namespace {

struct cert_export_options {
  std::string out_file;
};

int run_cert_export(const context& ctx, const cert_export_options& o) {
  auto cfg = ctx.load();
  if (!cfg) return report(cfg.error());
  auto store = open_store(*cfg);
  if (!store) return report(store.error());
  auto id = store->load_current();
  if (!id) return report(id.error());
  auto pem = id->certificate_pem();
  if (o.out_file.empty()) {
    std::cout << pem;
    return exit_ok;
  }
  if (auto err = write_file_atomically(o.out_file, pem.data(), pem.size(), 0644))
    return report(err);
  return exit_ok;
}

}  // namespace

void add_cert_export_command(CLI::App& cert, context& ctx) {
  auto o = std::make_shared<cert_export_options>();
  auto* cmd = add_command(cert, "export", "Print the current certificate as PEM (no key)", ctx,
                          [&ctx, o] { return run_cert_export(ctx, *o); });
  cmd->add_option("-o,--out", o->out_file, "Write to this file (mode 0644) instead of stdout");
}

}  // namespace certfleet::cli
