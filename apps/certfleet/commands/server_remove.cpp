// `certfleet server remove ID`: remove a server with its pins and any retained credentials.
#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"

namespace certfleet::cli {
namespace {

struct server_remove_options {
  std::string id;
};

int run_server_remove(const context& ctx, const server_remove_options& o) {
  return with_client(ctx, [&](control::control_client& c) -> int {
    auto r = c.call("server.remove", {{"id", o.id}});
    if (!r) return report(r.error());
    return print_result(ctx, *r,
                        r->contains("state") ? "removed " + one_line(*r) : "removed " + o.id);
  });
}

}  // namespace

void add_server_remove_command(CLI::App& server, context& ctx) {
  auto o = std::make_shared<server_remove_options>();
  add_command(server, "remove", "Remove a server with its pins and any retained credentials", ctx,
              [&ctx, o] { return run_server_remove(ctx, *o); })
      ->add_option("ID", o->id, "Server id")
      ->required();
}

}  // namespace certfleet::cli
