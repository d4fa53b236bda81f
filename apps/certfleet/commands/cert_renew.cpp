// `certfleet cert renew [--friendly-name NAME]`: the running daemon generates the next manager
// identity and rolls it out to every server that registered the current one, over mutual TLS and
// without credentials (docs/lifecycle.md, "Rotating the manager certificate"). Progress:
// `certfleet cert status`.
#include <sstream>

#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"

namespace certfleet::cli {
namespace {

struct cert_renew_options {
  std::string friendly_name;
};

int run_cert_renew(const context& ctx, const cert_renew_options& o) {
  return with_client(ctx, [&](control_client& c) -> int {
    json args = json::object();
    if (!o.friendly_name.empty()) args["friendly_name"] = o.friendly_name;
    auto r = c.call("cert.renew", args);
    if (!r) return report(r.error());
    std::ostringstream text;
    text << "New manager certificate " << str(*r, "new_thumbprint") << " (valid until "
         << str(*r, "new_not_after") << ")\n"
         << "replaces " << str(*r, "old_thumbprint") << " (valid until " << str(*r, "old_not_after")
         << ").\n";
    if (str(*r, "phase") == "completed")
      text << "No server had registered the old certificate: its key is already destroyed.";
    else
      text << "Rolling it out to " << num(*r, "servers")
           << " server(s) over mutual TLS; follow it with 'certfleet cert status'.";
    return print_result(ctx, *r, text.str());
  });
}

}  // namespace

void add_cert_renew_command(CLI::App& cert, context& ctx) {
  auto o = std::make_shared<cert_renew_options>();
  auto* cmd = add_command(cert, "renew",
                          "Generate the next manager certificate and roll it out to every "
                          "registered server (certfleetd must be running)",
                          ctx, [&ctx, o] { return run_cert_renew(ctx, *o); });
  cmd->add_option("--friendly-name", o->friendly_name,
                  "Label stored beside the new certificate (default: the current one's)");
}

}  // namespace certfleet::cli
