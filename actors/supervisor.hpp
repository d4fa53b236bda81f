// The supervisor: owns the fleet of server actors and what must be decided fleet-wide.
//
// - Credential retention and deletion: it seals credentials on `server add` and on new
//   credentials, opens them for the one registration that needs them, and deletes them
//   unrecoverably as soon as a server leaves registration (registered, denied, mismatch) or the
//   credentials outlive `credential_max_age_s`. At start it finishes deletions that a crash
//   interrupted (credentials of servers already past registration, or of no server at all).
// - Handshake admission: at most `max_concurrent_handshakes` connects+handshakes in flight,
//   granted first come first served, so a daemon restart with 10,000 servers is a steady ramp
//   instead of a storm that starves established connections.
// - Restarts: a server actor that fails is respawned from its persisted record.
// - The fleet view for `list` and `status`, from the presence reports of the server actors.
//
// Control requests (add, trust, reject, remove, credentials, show) arrive here and are routed to
// the server's actor.
#pragma once

#include <caf/fwd.hpp>

#include "actors/context.hpp"

namespace certfleet {

/// Spawns the supervisor, which loads every server from the store and spawns its actor.
caf::actor spawn_supervisor(caf::actor_system& sys, context_ptr ctx);

}  // namespace certfleet
