// `certfleet server credentials ID --account USER --password-stdin`: new registration
// credentials for a server in auth_failed or pending_registration; retried at once.
#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"

namespace certfleet::cli {
namespace {

struct server_credentials_options {
  std::string id;
  std::string account;
  password_source password;
};

int run_server_credentials(const context& ctx, const server_credentials_options& o) {
  if (o.account.empty())
    return report(make_error(ec::invalid_argument, "--account USER is required"));
  auto password = o.password.read("Password for " + o.account + " on " + o.id + ": ");
  if (!password) return report(password.error());
  return with_client(ctx, [&](control_client& c) -> int {
    json args{{"id", o.id}, {"account", o.account}, {"password", as_string(*password)}};
    auto r = c.call("server.credentials", args);
    control::scrub_passwords(args);
    if (!r) return report(r.error());
    return print_result(ctx, *r, "new credentials for " + one_line(*r));
  });
}

}  // namespace

void add_server_credentials_command(CLI::App& server, context& ctx) {
  auto o = std::make_shared<server_credentials_options>();
  auto* cmd = add_command(server, "credentials",
                          "New registration credentials for a server in auth_failed or "
                          "pending_registration; retries at once",
                          ctx, [&ctx, o] { return run_server_credentials(ctx, *o); });
  cmd->add_option("ID", o->id, "Server id")->required();
  cmd->add_option("--account", o->account, "Account with the Backup Administrator role")
      ->required();
  o->password.add_flags(*cmd);
}

}  // namespace certfleet::cli
