// The master key and the data sealed under it, kept together: a daemon never starts with a key
// that cannot open its credentials, and `init` never quietly makes a new key that orphans them.
//
// Sealed data of a state directory: the credentials in the database and the manager's TLS
// sessions file. The database records the id of the key they are sealed under
// (`master_key::id()`, in meta `store.master_key_id`), written when a key is first used with it.
//
// A credential that fails to open with the right key (`open` returning `ec::tampered`) is damaged
// or belongs to another record: that is final for that server (no retry can help), and the
// server's credential has to be entered again. Actors map it to the blocked state with the fix, as
// for a refused credential, never to a reconnect.
//
// Thread-safety: call before the daemon's actors start (or from the CLI); not synchronised.
#pragma once

#include <filesystem>
#include <string>

#include "common/error.hpp"
#include "crypto/sealing.hpp"
#include "storage/state_store.hpp"

namespace certfleet {

/// What sealed data a state directory holds.
struct sealed_data {
  size_t credentials = 0;
  bool tls_sessions = false;

  bool any() const { return credentials > 0 || tls_sessions; }
  /// "3 sealed credentials and the TLS sessions file /var/lib/certfleet/tls-sessions".
  std::string describe(const std::filesystem::path& tls_sessions_file) const;
};

sealed_data find_sealed_data(const state_store& db, const std::filesystem::path& tls_sessions_file);

/// Loads the key in `key_file` (`source` names it in messages: "master key file PATH" or
/// "systemd credential master.key (PATH)") for a store that may hold data sealed under it, and
/// records its id when none is recorded yet. Refuses, changing nothing:
/// - a missing file while sealed data exists: `ec::invalid_state`, naming the file and the data,
///   with the fixes (restore the key; or `certfleet init --discard-sealed-credentials`);
/// - a missing file and nothing sealed: `ec::not_found` ("not initialised; run certfleet init");
/// - a key whose id is not the recorded one, or (nothing recorded yet) that cannot open a stored
///   credential: `ec::tampered`, naming the source and the database;
/// - the errors of `master_key::load` (permissions, size).
caf::expected<master_key> load_master_key(const std::filesystem::path& key_file,
                                          const std::string& source, state_store& db,
                                          const std::filesystem::path& tls_sessions_file);

/// Creates the key in `key_file` for `certfleet init` and records its id. Refuses with
/// `ec::already_exists` while sealed data exists, unless `discard_sealed`: then every stored
/// credential is erased first (one `credentials_deleted` event per server, reason
/// "master_key_replaced") and the TLS sessions file deleted. `ec::already_exists` too when the key
/// file exists.
caf::expected<master_key> create_master_key(const std::filesystem::path& key_file, state_store& db,
                                            const std::filesystem::path& tls_sessions_file,
                                            bool discard_sealed);

}  // namespace certfleet
