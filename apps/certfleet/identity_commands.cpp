// `certfleet init` and `certfleet cert ...`: the manager's own identity.
#include <cstdlib>
#include <iostream>

#include "apps/certfleet/commands.hpp"
#include "apps/cli/output.hpp"
#include "common/fs.hpp"
#include "config/state_layout.hpp"
#include "crypto/certificate_store.hpp"
#include "crypto/sealing.hpp"
#include "storage/master_key_guard.hpp"
#include "storage/state_store.hpp"

namespace certfleet::cli {
namespace {

constexpr const char* default_friendly_name = "certfleet manager";

caf::expected<identity> generate_identity(const settings& cfg, const std::string& friendly_name) {
  identity_subject subject{cfg.identity.common_name, cfg.identity.organization};
  return identity::generate(subject, std::chrono::hours{24} * cfg.identity.validity_days,
                            friendly_name);
}

int print_identity(const context& ctx, const identity& id, const std::string& heading) {
  auto s = id.summary();
  if (ctx.json)
    std::cout << to_json(s).dump(2) << '\n';
  else
    print_summary(std::cout, s, heading);
  return exit_ok;
}

/// Creates whatever part of the state directory is missing; never replaces an existing identity.
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

caf::expected<certificate_store> open_store(const settings& cfg) {
  state_layout layout{cfg.state_dir};
  if (!std::filesystem::exists(layout.root))
    return make_error(ec::not_found, "state directory " + layout.root.string() +
                                         " does not exist; run 'certfleet init' first");
  if (auto err = check_private_directory(layout.root)) return err;
  return certificate_store::open(layout.certs_dir(), false, cfg.identity.store_group);
}

}  // namespace

void add_identity_commands(CLI::App& app, context& ctx) {
  static std::string friendly_name = default_friendly_name;
  auto* init = app.add_subcommand(
      "init",
      "Create the state directory, the sealing master key and the manager identity, "
      "then print the identity summary. Safe to repeat: nothing existing is replaced.");
  init->add_option("--friendly-name", friendly_name, "Label stored beside the certificate")
      ->capture_default_str();
  static bool discard_sealed = false;
  init->add_flag("--discard-sealed-credentials", discard_sealed,
                 "When the master key is lost: delete every stored credential (with events) and "
                 "create a new key");
  init->callback([&ctx] {
    ctx.run = [&ctx]() -> int {
      auto cfg = ctx.load();
      if (!cfg) return report(cfg.error());
      bool created = false;
      auto id = initialise(*cfg, friendly_name, discard_sealed, created);
      if (!id) return report(id.error());
      std::cerr << (created ? "Initialised " : "Already initialised, nothing changed: ")
                << cfg->state_dir.string() << '\n';
      return print_identity(ctx, *id, "Manager certificate (verify these thumbprints out of band)");
    };
  });

  auto* cert = app.add_subcommand("cert", "The manager's own certificate");
  cert->require_subcommand(1);

  static std::string generate_name;
  auto* generate = cert->add_subcommand(
      "generate",
      "Generate a new self-signed identity and make it current; the old one is kept "
      "as the previous identity");
  generate->add_option("--friendly-name", generate_name, "Label stored beside the certificate")
      ->required();
  generate->callback([&ctx] {
    ctx.run = [&ctx]() -> int {
      auto cfg = ctx.load();
      if (!cfg) return report(cfg.error());
      auto store = open_store(*cfg);
      if (!store) return report(store.error());
      auto id = generate_identity(*cfg, generate_name);
      if (!id) return report(id.error());
      if (auto err = store->install(*id)) return report(err);
      return print_identity(ctx, *id,
                            "New manager certificate (verify these thumbprints out of band)");
    };
  });

  static bool previous = false;
  auto* show = cert->add_subcommand("show", "Print the current identity's summary");
  show->add_flag("--previous", previous, "Show the identity the current one replaced");
  show->callback([&ctx] {
    ctx.run = [&ctx]() -> int {
      auto cfg = ctx.load();
      if (!cfg) return report(cfg.error());
      auto store = open_store(*cfg);
      if (!store) return report(store.error());
      if (previous) {
        auto id = store->load_previous();
        if (!id) return report(id.error());
        if (!*id)
          return report(make_error(ec::not_found,
                                   "there is no previous identity in " + store->dir().string()));
        return print_identity(ctx, **id, "Previous manager certificate");
      }
      auto id = store->load_current();
      if (!id) return report(id.error());
      return print_identity(ctx, *id, "Manager certificate");
    };
  });

  static std::string out_file;
  auto* exp = cert->add_subcommand("export", "Print the current certificate as PEM (no key)");
  exp->add_option("-o,--out", out_file, "Write to this file (mode 0644) instead of stdout");
  exp->callback([&ctx] {
    ctx.run = [&ctx]() -> int {
      auto cfg = ctx.load();
      if (!cfg) return report(cfg.error());
      auto store = open_store(*cfg);
      if (!store) return report(store.error());
      auto id = store->load_current();
      if (!id) return report(id.error());
      auto pem = id->certificate_pem();
      if (out_file.empty()) {
        std::cout << pem;
        return exit_ok;
      }
      if (auto err = write_file_atomically(out_file, pem.data(), pem.size(), 0644))
        return report(err);
      return exit_ok;
    };
  });
}

}  // namespace certfleet::cli
