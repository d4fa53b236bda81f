// The supervisor, i.e. the fleet registry: which servers exist, their actors, and how they stand.
//
// - Adding servers: one request or a batch (`server.add_bulk`); a batch is validated entry by entry
//   (the same errors as single adds, including duplicates within the batch), then every credential
//   is stored by the custody actor with one flush and every record with its events by the storage
//   actor in one fsynced batch, credentials first (an orphan credential is deleted at the next
//   start), and only then are actors spawned.
// - Restarts: a server actor that fails is respawned from its persisted record, which the storage
//   actor reads (after the writes it had queued) on its own thread.
// - The fleet view for `list` and `status`, from the presence reports of the server actors.
// - Control requests (add, trust, reject, remove, credentials, show) arrive here and are routed to
//   the server's actor; new credentials go through the custody actor first.
//
// Handshake admission (admission_actor.hpp) and credential custody (custody_actor.hpp) are actors
// of their own. Thread: a scheduler thread; its writes go through the storage and custody actors.
#pragma once

#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "actors/context.hpp"
#include "actors/manager.hpp"

namespace certfleet {

/// The actors the registry hands to every server actor.
struct fleet_services {
  caf::actor admission;
  caf::actor custody;
};

/// Spawns the registry, which loads every server from the store and spawns its actor, and tells
/// the custody actor about it (for credential expiry).
caf::actor spawn_supervisor(caf::actor_system& sys, context_ptr ctx, fleet_services services);

/// A batch add (`add_atom` with this payload) and its answer: one result per request, in order.
using add_server_requests = std::vector<add_server_request>;
using add_server_results = std::vector<caf::expected<server_view>>;

}  // namespace certfleet

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::add_server_requests)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::add_server_results)
