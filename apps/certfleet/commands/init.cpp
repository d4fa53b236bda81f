// `certfleet init`: creates whatever part of the state directory is missing; never replaces an
// existing identity.
#include <cstdlib>
#include <iostream>

#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"
#include "common/fs.hpp"
#include "config/state_layout.hpp"
#include "crypto/sealing.hpp"
#include "storage/master_key_guard.hpp"
#include "storage/state_store.hpp"

namespace certfleet::cli {
namespace {

struct init_options {
  std::string friendly_name = "certfleet manager";
  bool discard_sealed = false;
};

caf::expected<identity> initialise(const settings& cfg, const std::string& friendly_name,
                                   bool discard_sealed, bool& created) {
  state_layout layout{cfg.state_dir};
  created = false;
  if (std::filesystem::exists(layout.root)) {
    if (auto err = check_private_directory(layout.root)) return err;
  } else if (auto err = ensure_directory(layout.root, 0700)) {
    return err;
  }
  auto db = state_store::open(layout.db_dir());
  if (!db) return db.error();
  auto loc = locate_master_key(cfg, std::getenv("CREDENTIALS_DIRECTORY"));
  if (!std::filesystem::exists(loc.file)) {
    auto key = create_master_key(loc.file, **db, layout.tls_sessions_file(), discard_sealed);
    if (!key) return key.error();
    created = true;
  } else if (auto key =
                 load_master_key(loc.file, loc.description, **db, layout.tls_sessions_file());
             !key) {
    return key.error();
  }
  auto store = certificate_store::open(layout.certs_dir(), true, cfg.identity.store_group);
  if (!store) return store.error();
  if (!store->has_current()) {
    auto id = generate_identity(cfg, friendly_name);
    if (!id) return id.error();
    if (auto err = store->install(*id)) return err;
    created = true;
  }
  return store->load_current();
}

int run_init(const context& ctx, const init_options& o) {
  auto cfg = ctx.load();
  if (!cfg) return report(cfg.error());
  bool created = false;
  auto id = initialise(*cfg, o.friendly_name, o.discard_sealed, created);
  if (!id) return report(id.error());
  std::cerr << (created ? "Initialised " : "Already initialised, nothing changed: ")
            << cfg->state_dir.string() << '\n';
  return print_identity(ctx, *id, "Manager certificate (verify these thumbprints out of band)");
}

}  // namespace

void add_init_command(CLI::App& parent, context& ctx) {
  auto o = std::make_shared<init_options>();
  auto* cmd = add_command(
      parent, "init",
      "Create the state directory, the sealing master key and the manager identity, then print "
      "the identity summary. Safe to repeat: nothing existing is replaced.",
      ctx, [&ctx, o] { return run_init(ctx, *o); });
  cmd->add_option("--friendly-name", o->friendly_name, "Label stored beside the certificate")
      ->capture_default_str();
  cmd->add_flag("--discard-sealed-credentials", o->discard_sealed,
                "When the master key is lost: delete every stored credential (with events) and "
                "create a new key");
}

}  // namespace certfleet::cli
