// `certfleet server add HOST[:PORT] --account USER ...` and `server add --from FILE`: register
// servers; their credentials are sealed until the registration succeeds, then deleted.
#include <iostream>

#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"
#include "common/fs.hpp"
#include "control/manifest.hpp"

namespace certfleet::cli {
namespace {

struct server_add_options {
  std::string address;
  std::string account;
  password_source password;
  std::string expect_thumbprint;
  std::string name;
  std::string from_file;
};

/// The servers of a bulk file (control/manifest.hpp: CSV, a JSON array or an agent manifest), as
/// the daemon's server.add args without the password. An agent manifest's thumbprints were
/// published out of band, so they become the expected thumbprints.
caf::expected<std::vector<json>> load_bulk_file(const std::string& file,
                                                const std::string& default_account) {
  auto bytes = read_file(file);
  if (!bytes) return bytes.error();
  auto entries = control::parse_server_list_text(std::string(bytes->begin(), bytes->end()), file,
                                                 control::thumbprint_rule::optional);
  if (!entries) return entries.error();
  if (entries->empty()) return make_error(ec::invalid_argument, file + " lists no servers");
  std::vector<json> out;
  for (size_t i = 0; i < entries->size(); ++i) {
    auto& e = (*entries)[i];
    auto account = e.account.empty() ? default_account : e.account;
    if (account.empty())
      return make_error(ec::invalid_argument,
                        file + " entry " + std::to_string(i) + " (" + e.address() +
                            "): no account; fill the account column or pass --account USER");
    json entry{{"host", e.host}, {"port", e.port}, {"account", account}};
    if (!e.name.empty()) entry["name"] = e.name;
    if (e.sha256) entry["expected_thumbprint"] = e.sha256->to_string();
    out.push_back(std::move(entry));
  }
  return out;
}

int run_add_bulk(const context& ctx, const server_add_options& o) {
  auto entries = load_bulk_file(o.from_file, o.account);
  if (!entries) return report(entries.error());
  auto password = o.password.read("Password for the servers in " + o.from_file + ": ");
  if (!password) return report(password.error());
  // A JSON string escapes at most 6 bytes per password byte.
  size_t extra = 16 + password->size() * 6;
  return with_client(ctx, [&](control_client& c) -> int {
    json all = json::array();
    int rc = exit_ok;
    size_t added = 0, failed = 0;
    for (auto& batch : batches(*entries, extra)) {
      for (auto& e : batch) e["password"] = as_string(*password);
      auto r = c.call("server.add_bulk", {{"servers", batch}});
      control::scrub_passwords(batch);
      if (!r) return report(r.error());
      for (auto& res : (*r)["results"]) {
        auto index = res["index"].get<size_t>();
        const auto& entry = batch[index];
        auto address = control::format_address(entry["host"].get<std::string>(),
                                               entry["port"].get<uint16_t>());
        if (res["ok"].get<bool>()) {
          ++added;
          if (!ctx.json) std::cout << "added " << one_line(res["server"]) << '\n';
          all.push_back(res["server"]);
        } else {
          ++failed;
          auto err = control::error_from_json(res["error"]);
          if (rc == exit_ok) rc = exit_code_for(err);
          std::cerr << "certfleet: " << address << ": " << describe(err) << '\n';
          all.push_back({{"address", address}, {"error", res["error"]}});
        }
      }
    }
    if (ctx.json)
      std::cout << all.dump(2) << '\n';
    else
      std::cout << added << " added, " << failed << " failed\n";
    return rc;
  });
}

int run_server_add(const context& ctx, const server_add_options& o) {
  if (!o.from_file.empty()) {
    if (!o.address.empty() || !o.expect_thumbprint.empty() || !o.name.empty())
      return report(make_error(ec::invalid_argument,
                               "--from FILE takes hosts, names and thumbprints from the file; "
                               "do not also give HOST, --name or --expect-thumbprint"));
    return run_add_bulk(ctx, o);
  }
  if (o.address.empty())
    return report(
        make_error(ec::invalid_argument, "give HOST[:PORT] (or --from FILE for many servers)"));
  if (o.account.empty())
    return report(make_error(ec::invalid_argument,
                             "--account USER is required: an account with the Backup "
                             "Administrator role on the server"));
  std::string host;
  uint16_t port = 0;
  if (auto err = control::parse_address(o.address, host, port)) return report(err);
  json args{{"host", host}, {"port", port}, {"account", o.account}};
  if (!o.name.empty()) args["name"] = o.name;
  if (!o.expect_thumbprint.empty()) {
    auto t = normalised_thumbprint(o.expect_thumbprint, "--expect-thumbprint");
    if (!t) return report(t.error());
    args["expected_thumbprint"] = *t;
  }
  auto password = o.password.read("Password for " + o.account + "@" +
                                  control::format_address(host, port) + ": ");
  if (!password) return report(password.error());
  return with_client(ctx, [&](control_client& c) -> int {
    args["password"] = as_string(*password);
    auto r = c.call("server.add", args);
    control::scrub_passwords(args);
    if (!r) return report(r.error());
    return print_result(
        ctx, *r,
        "added " + one_line(*r) + "\nFollow it with 'certfleet server show " + str(*r, "id") + "'");
  });
}

}  // namespace

void add_server_add_command(CLI::App& server, context& ctx) {
  auto o = std::make_shared<server_add_options>();
  auto* cmd = add_command(server, "add",
                          "Register a server (or many with --from FILE); its credentials are "
                          "sealed until the registration succeeds, then deleted",
                          ctx, [&ctx, o] { return run_server_add(ctx, *o); });
  cmd->add_option("HOST[:PORT]", o->address, "Address; [IPv6]:PORT; default port 9401");
  cmd->add_option("--account", o->account, "Account with the Backup Administrator role");
  o->password.add_flags(*cmd);
  // An empty value (a script's unset variable) must not silently drop the pin.
  cmd->add_option("--expect-thumbprint", o->expect_thumbprint,
                  "SHA-256 thumbprint verified out of band: trusted at once when it matches")
      ->check(CLI::Validator(
          [](std::string& v) {
            return v.find_first_not_of(" \t") == std::string::npos
                       ? std::string{"is empty: give the thumbprint, or leave the option out"}
                       : std::string{};
          },
          "THUMBPRINT"));
  cmd->add_option("--name", o->name, "Display name (default HOST:PORT)");
  cmd->add_option("--from", o->from_file,
                  "CSV (header host,port,account,expected_thumbprint,name) or JSON array");
}

}  // namespace certfleet::cli
