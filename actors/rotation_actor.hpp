// The rotation actor: `certfleet cert renew` and the roll-out of the new manager certificate to
// the fleet over mutual TLS, without credentials (docs/lifecycle.md, "Rotating the manager
// certificate"). One per daemon, on a thread of its own (spawned detached): it generates keys,
// fsyncs its record and overwrites the retired key file, none of which may hold a scheduler thread.
//
// clang-format off
//
//   (none, completed, abandoned) --renew--> rolling_out --every server moved,--> retiring --> completed
//                                               |   ^      or the old certificate
//                 server acknowledged (batched, |   |      expired (pending servers go to
//                 durable, then presented the   +---+      reregistration_required)
//                 new certificate)
//
// clang-format on
//
// What it owns: the rotation record (actors/rotation_record.hpp), stored in the meta family with
// each step's event in the same fsynced batch, and the writes to `daemon_context::identities`,
// which the server actors read to choose the certificate of each connection. Every step is
// idempotent and starts from the stored record, so a daemon killed at any point resumes the
// rotation at its next start (`open_manager_identities` rebuilds the identities from it).
//
// Messages:
//   (registry_atom, caf::actor)   the registry, for nudging server actors; resumes a stored
//   rotation (renew_atom, std::string friendly_name) -> rotation_view  starts a rotation
//   (rotation_atom, status_atom) -> rotation_view
//   (rotated_atom, std::string id, std::string host, uint16_t port, thumbprint stored)
//       a server actor's agent stored the new certificate (`manager_certificate_stored`)
//   (retired_atom, std::string id, thumbprint retired)  the agent dropped the old certificate
//   (rotation_atom, reject_atom, std::string id, std::string detail)  the agent refused
//   (rotation_atom, add_atom, std::string id)  registered with the old certificate meanwhile
//   (tick_atom)  from the timer actor: the old certificate's expiry, servers removed meanwhile
//   (stop_atom)  writes what is queued, then quits
// It nudges every server actor with (rotation_atom) when there is something to send, and sends
// (reregister_atom) to those the old certificate's expiry left behind, both through the registry
// ((forward_atom, ids, message)).
#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "actors/context.hpp"
#include "actors/manager_identities.hpp"
#include "crypto/certificate_store.hpp"
#include "storage/state_store.hpp"

namespace certfleet {

/// At daemon start: the identities to present, from the certificate store's current (and, during a
/// rotation, previous) identity and the stored rotation record. A rotation whose new identity was
/// never stored is marked abandoned (a warning says so). Fails when the store's identities do not
/// match the record (naming both) or cannot be loaded.
caf::expected<std::shared_ptr<manager_identities>> open_manager_identities(
    const certificate_store& store, state_store& db, const identity& current);

/// At daemon start, before any connection: forgets the saved TLS sessions of the servers that
/// moved to the new certificate of the stored rotation (they were made with the old one).
void forget_rotated_sessions(state_store& db, tls_session_cache& sessions);

/// `detached = false` runs it on the scheduler, for CAF's deterministic test coordinator.
caf::actor spawn_rotation_actor(caf::actor_system& sys, context_ptr ctx, bool detached = true);

}  // namespace certfleet
