// `certfleet cert generate --friendly-name NAME`: a new self-signed identity becomes current; the
// old one is kept as the previous identity. Refused while servers trust the current identity: they
// registered its certificate and would never accept another one (`cert renew` rolls a new
// certificate out to them instead).
#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"
#include "config/state_layout.hpp"
#include "storage/state_store.hpp"

namespace certfleet::cli {
namespace {

struct cert_generate_options {
  std::string friendly_name;
};

/// Servers that pinned this manager (trusted, or blocked on a changed certificate): asked of the
/// running daemon, or read from the database when no daemon runs.
caf::expected<int64_t> servers_trusting_this_manager(const context& ctx, const settings& cfg) {
  state_layout layout{cfg.state_dir};
  std::string socket = !ctx.socket.empty()                  ? ctx.socket
                       : !cfg.daemon.control_socket.empty() ? cfg.daemon.control_socket
                                                            : layout.control_socket().string();
  control::connect_failure why;
  auto client = control_client::connect(socket, &why);
  if (client) {
    auto s = client->call("status", json::object());
    if (!s) return s.error();
    const auto& per_state = (*s)["per_state"];
    return num(per_state, "trusted") + num(per_state, "certificate_changed");
  }
  if (why != control::connect_failure::not_running) return client.error();
  if (!std::filesystem::exists(layout.db_dir())) return int64_t{0};
  auto db = state_store::open(layout.db_dir());
  if (!db) return db.error();
  int64_t count = 0;
  if (auto err = (*db)->for_each_server([&](const server_record& r) {
        count += r.pinned.has_value() && r.state != server_state::removed;
        return true;
      }))
    return err;
  return count;
}

int run_cert_generate(const context& ctx, const cert_generate_options& o) {
  auto cfg = ctx.load();
  if (!cfg) return report(cfg.error());
  auto store = open_store(*cfg);
  if (!store) return report(store.error());
  auto trusting = servers_trusting_this_manager(ctx, *cfg);
  if (!trusting) return report(trusting.error());
  if (*trusting > 0)
    return report(make_error(
        ec::invalid_state,
        std::to_string(*trusting) +
            " server(s) trust the current manager certificate and would refuse a new one; "
            "nothing was changed. Run 'certfleet cert renew' to roll a new certificate out to "
            "them."));
  auto id = generate_identity(*cfg, o.friendly_name);
  if (!id) return report(id.error());
  if (auto err = store->install(*id)) return report(err);
  return print_identity(ctx, *id, "New manager certificate (verify these thumbprints out of band)");
}

}  // namespace

void add_cert_generate_command(CLI::App& cert, context& ctx) {
  auto o = std::make_shared<cert_generate_options>();
  auto* cmd = add_command(cert, "generate",
                          "Generate a new self-signed identity and make it current; the old one "
                          "is kept as the previous identity",
                          ctx, [&ctx, o] { return run_cert_generate(ctx, *o); });
  cmd->add_option("--friendly-name", o->friendly_name, "Label stored beside the certificate")
      ->required();
}

}  // namespace certfleet::cli
