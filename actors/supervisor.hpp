// The supervisor: owns the fleet of server actors and what must be decided fleet-wide.
//
// - Adding servers: one request or a batch (`server.add_bulk`); a batch is validated entry by entry
//   (the same errors as single adds, including duplicates within the batch), then every credential
//   is stored with one flush and every record with its events in one fsynced batch, credentials
//   first (an orphan credential is deleted at the next start), and only then are actors spawned.
// - Credential retention and deletion: it seals credentials on `server add` and on new
//   credentials, opens them for the one registration that needs them, and deletes them
//   unrecoverably as soon as a server leaves registration (registered, denied, mismatch) or the
//   credentials outlive `credential_max_age_s`. Deletion requests are queued and erased in batches
//   (one scrub of the credentials family per batch): the batch runs as soon as the supervisor has
//   handled the requests already in its mailbox, so a quiet daemon erases at once and a storm
//   erases hundreds per scrub. A queued credential is no longer handed out. A failed batch is
//   logged and retried after a second; nothing is dropped. At start it finishes deletions that a
//   crash interrupted (credentials of servers already past registration, or of no server at all).
// - Handshake admission: at most `max_concurrent_handshakes` connects+handshakes in flight,
//   granted first come first served, so a daemon restart with 10,000 servers is a steady ramp
//   instead of a storm that starves established connections.
// - Restarts: a server actor that fails is respawned from its persisted record.
// - The fleet view for `list` and `status`, from the presence reports of the server actors.
//
// Control requests (add, trust, reject, remove, credentials, show) arrive here and are routed to
// the server's actor.
#pragma once

#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "actors/context.hpp"
#include "actors/manager.hpp"

namespace certfleet {

/// Spawns the supervisor, which loads every server from the store and spawns its actor.
caf::actor spawn_supervisor(caf::actor_system& sys, context_ptr ctx);

/// A batch add (`add_atom` with this payload) and its answer: one result per request, in order.
using add_server_requests = std::vector<add_server_request>;
using add_server_results = std::vector<caf::expected<server_view>>;

}  // namespace certfleet

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::add_server_requests)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::add_server_results)
