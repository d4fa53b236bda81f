// Handshake admission: at most `max_concurrent_handshakes` connects and TLS handshakes in flight,
// granted first come first served, so a daemon restart with 10,000 servers is a steady ramp instead
// of a storm that starves established connections.
//
// Messages: (slot_atom) from a server actor queues it; it receives (slot_atom) when granted and
// answers with (release_atom) once its handshake ended (either way). A holder or waiter that dies
// gives its slots back (the admission actor monitors every requester). (stop_atom) quits.
// Thread: a scheduler thread; it never touches the store.
#pragma once

#include <caf/fwd.hpp>

#include "actors/context.hpp"

namespace certfleet {

caf::actor spawn_admission_actor(caf::actor_system& sys, size_t max_concurrent_handshakes);

}  // namespace certfleet
