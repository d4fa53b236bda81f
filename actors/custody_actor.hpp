// Credential custody: the only actor that handles the backup servers' sealed credentials.
//
// It stores sealed credentials (on `server add` and on new credentials), opens them for the one
// registration that needs them, and deletes them unrecoverably as soon as a server leaves
// registration (registered, denied, mismatch) or they outlive `credential_max_age_s` (the timer
// actor's sweep). A legacy server's credentials (server_auth::legacy_credentials) are neither swept
// nor cleaned up at start: it logs in with them on every connection. Deletions are queued and
// erased in batches, one scrub of the credentials family per batch: the batch runs once the
// requests already in the mailbox are handled, so a quiet daemon erases at once and a storm erases
// hundreds per scrub. A queued credential is no longer handed out. A failed batch is logged and
// retried after a second; nothing is dropped. At start it finishes deletions that a crash
// interrupted (credentials of servers already past registration, or of no server at all); at stop
// it finishes the queue.
//
// Thread: its own (spawned detached): a scrub flushes, compacts and waits for the files to go,
// which must not hold a scheduler thread.
//
// Messages:
//   (registry_atom, caf::actor registry)  whom to tell about expired credentials:
//       the registry receives (credentials_atom, remove_atom, std::vector<std::string> ids, why)
//   (credentials_atom, id) -> (std::string account, secret_bytes password)  or ec::not_found
//   (credentials_atom, remove_atom, id, why)  queue the deletion
//   (credentials_atom, add_atom, sealed_credentials)  -> bool   store many (server add)
//   (credentials_atom, id, account, secret_bytes password) -> bool  seal and store new ones
//   (sweep_atom)  delete expired credentials
//   (stop_atom)   finish the queue and quit
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "actors/context.hpp"

namespace certfleet {

/// (server id, sealed credentials) of servers being added.
using sealed_credentials = std::vector<std::pair<std::string, sealed_blob>>;

caf::actor spawn_custody_actor(caf::actor_system& sys, context_ptr ctx, bool detached = true);

/// Half the credential lifetime, between 1 and 10 seconds: an expiry is acted on promptly.
std::chrono::seconds credential_sweep_period(const daemon_settings& cfg);

}  // namespace certfleet

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::sealed_credentials)
