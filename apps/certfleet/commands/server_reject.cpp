// `certfleet server reject ID`: refuse the thumbprint a server presented.
#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"

namespace certfleet::cli {
namespace {

struct server_reject_options {
  std::string id;
};

int run_server_reject(const context& ctx, const server_reject_options& o) {
  return with_client(ctx, [&](control::control_client& c) -> int {
    auto r = c.call("server.reject", {{"id", o.id}});
    if (!r) return report(r.error());
    return print_result(ctx, *r,
                        r->contains("state") ? "rejected " + one_line(*r) : "rejected " + o.id);
  });
}

}  // namespace

void add_server_reject_command(CLI::App& server, context& ctx) {
  auto o = std::make_shared<server_reject_options>();
  add_command(server, "reject", "Refuse the thumbprint a server presented", ctx,
              [&ctx, o] { return run_server_reject(ctx, *o); })
      ->add_option("ID", o->id, "Server id")
      ->required();
}

}  // namespace certfleet::cli
