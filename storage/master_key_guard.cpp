#include "storage/master_key_guard.hpp"

#include <system_error>
#include <vector>

#include "common/address.hpp"
#include "common/vocabulary.hpp"

namespace certfleet {
namespace {

namespace fs = std::filesystem;

bool present(const fs::path& p) {
  std::error_code ignored;
  return fs::exists(fs::symlink_status(p, ignored));
}

std::string address_of(const server_record& r) {
  return format_address(r.host, r.port);
}

// Opens one stored credential with `key`: a key that cannot open a credential the database holds
// is the wrong key (or the credential is damaged, which the per-server error then says).
caf::error check_against_a_credential(const master_key& key, const std::string& source,
                                      const state_store& db) {
  auto ids = db.credential_ids();
  if (ids.empty()) return {};
  auto blob = db.get_credential(ids.front());
  if (!blob) return blob.error();
  if (!*blob) return {};
  auto opened = open(key, ids.front(), **blob);
  if (opened) return {};
  if (code_of(opened.error()) != ec::tampered) return opened.error();
  return make_error(ec::tampered, "the " + source + " cannot open the credentials stored in " +
                                      db.dir().string() + " (the first one tried, of server '" +
                                      ids.front() +
                                      "', failed authentication): it is not the key they were "
                                      "sealed under. Restore the right key file from a backup; "
                                      "nothing was changed");
}

}  // namespace

std::string sealed_data::describe(const fs::path& tls_sessions_file) const {
  std::string out;
  if (credentials > 0)
    out = std::to_string(credentials) + " sealed credential" + (credentials == 1 ? "" : "s");
  if (tls_sessions) {
    if (!out.empty()) out += " and ";
    out += "the sealed TLS sessions file " + tls_sessions_file.string();
  }
  return out;
}

sealed_data find_sealed_data(const state_store& db, const fs::path& tls_sessions_file) {
  sealed_data out;
  out.credentials = db.credential_ids().size();
  out.tls_sessions = present(tls_sessions_file);
  return out;
}

caf::expected<master_key> load_master_key(const fs::path& key_file, const std::string& source,
                                          state_store& db, const fs::path& tls_sessions_file) {
  if (!present(key_file)) {
    auto sealed = find_sealed_data(db, tls_sessions_file);
    // TLS sessions alone are a cache: losing them costs full handshakes, nothing else.
    if (sealed.credentials == 0)
      return make_error(ec::not_found, "the " + source +
                                           " does not exist: the state is not initialised; run "
                                           "'certfleet init' first");
    return make_error(
        ec::invalid_state,
        "the " + source + " is missing, but database " + db.dir().string() + " holds " +
            sealed.describe(tls_sessions_file) +
            " that only that key can open; certfleet refuses to start and changed nothing. "
            "Restore the key file from a backup (or point identity.master_key_file at it). Only "
            "if it is lost for good, run 'certfleet init --discard-sealed-credentials', which "
            "deletes those credentials (their servers then need them entered again) and creates "
            "a new key");
  }
  auto key = master_key::load(key_file);
  if (!key) return key.error();
  auto recorded = db.master_key_id();
  if (!recorded) return recorded.error();
  auto id = key->id();
  if (*recorded) {
    if (**recorded == id) return key;
    return make_error(ec::tampered,
                      "the " + source + " (key id " + id + ") is not the key the data in " +
                          db.dir().string() + " is sealed under (key id " + **recorded +
                          "); certfleet refuses to start and changed nothing. Restore the right "
                          "key file from a backup");
  }
  if (auto err = check_against_a_credential(*key, source, db)) return err;
  if (auto err = db.put_master_key_id(id)) return err;
  return key;
}

caf::expected<master_key> create_master_key(const fs::path& key_file, state_store& db,
                                            const fs::path& tls_sessions_file,
                                            bool discard_sealed) {
  if (present(key_file))
    return make_error(ec::already_exists, "master key " + key_file.string() +
                                              " already exists; refusing to replace it, as every "
                                              "sealed secret depends on it");
  auto sealed = find_sealed_data(db, tls_sessions_file);
  if (sealed.credentials > 0 && !discard_sealed)
    return make_error(
        ec::already_exists,
        "database " + db.dir().string() + " holds " + sealed.describe(tls_sessions_file) +
            ", sealed under a master key that is not at " + key_file.string() +
            "; a new key could never open them, so init refuses and changed nothing. Restore "
            "the key file from a backup; only if it is lost for good, run 'certfleet init "
            "--discard-sealed-credentials' (the servers concerned then need their credentials "
            "entered again)");
  if (sealed.credentials > 0) {
    auto ids = db.credential_ids();
    std::vector<event_record> events;
    for (const auto& id : ids) {
      event_record e;
      e.type = to_string(event_type::credentials_deleted);
      e.server_id = id;
      if (auto r = db.get_server(id); r && *r) e.address = address_of(**r);
      e.details = R"({"reason":"master_key_replaced"})";
      events.push_back(std::move(e));
    }
    if (auto done = db.erase_credentials(ids, std::move(events)); !done) return done.error();
  }
  if (sealed.tls_sessions) {
    std::error_code err;
    fs::remove(tls_sessions_file, err);
    if (err)
      return make_error(ec::io_error, "cannot delete the TLS sessions file " +
                                          tls_sessions_file.string() +
                                          " sealed under the lost key: " + err.message());
  }
  auto key = master_key::create(key_file);
  if (!key) return key.error();
  if (auto err = db.put_master_key_id(key->id())) return err;
  return key;
}

}  // namespace certfleet
