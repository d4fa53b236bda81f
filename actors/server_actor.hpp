// One backup server: an actor that owns its connection, its TLS client session and its thumbprint
// state. Every state is persisted in its server_record before the actor acts on it, so a restarted
// daemon (or a restarted actor) resumes where it was.
//
// Each server_state is one behavior (server_actor.cpp), composed with the handlers every state
// shares (show, remove, trust, new credentials, and the disposal of messages about an abandoned
// connection). The states that contact their server (pending_registration, registering, trusted)
// add the connection handlers; the others never start a connection. An idle server (no
// connection: waiting for its retry, or for an admin) rests: it holds one empty behavior shared by
// every resting actor instead of its state's, and rebuilds that at its next message
// (`rest_if_idle` in server_actor.cpp); what it answers, and in which order, does not change.
//
// clang-format off
//
//                    failure before `registered`: back off (jittered), reconnect
//                +----------------------------------------------------+
//                v                                                    |
//   add --> pending_registration --TLS up, credentials sent--> registering
//           |  ^     ^                                         |        |
//           |  |     | credentials(new)              registered|        | denied, or
//           |  |     |                                         |        | credentials gone
//           |  |  auth_failed <--------------------------------|--------+ or expired
//           |  |                                               |
//           |  | credentials(new): registers again, the        |
//           |  | expected thumbprint dropped                   |
//           v  |                                               |
//   certificate_mismatch  (trust refused: the server   expected matches, or trust_policy tofu?
//        ^                 never registered us)           | no             | yes
//        | reject                                         v                |
//        +------------------------------------- awaiting_validation        |
//                                                         | trust(presented)
//                                                         v                v
//                                                       trusted <----------+
//                                                       |    ^   connection lost: back off,
//                      presented != pinned at a         |    |   reconnect
//                      later handshake                  v    | trust(presented)
//                                             certificate_changed   (reject: stays blocked)
//
//   Manager certificate rotation (actors/rotation_actor.hpp), while trusted and connected: the
//   new certificate is offered, the agent's acknowledgement goes to the rotation actor, which
//   records it before the next connection presents the new certificate; later, the notice to
//   drop the old one. A server of the rotation that never acknowledged before the old
//   certificate expired:
//
//     trusted, awaiting_validation, --old manager certificate--> reregistration_required
//     certificate_changed               expired, not moved            | credentials(new)
//                                                                     v
//                                                            pending_registration (a registered
//                                                            server whose pin matches is trusted)
//
// clang-format on
//
// trusted: mutual TLS pinned on the leaf's SHA-256, then `collect` every collect_interval
// (jittered). A legacy server (server_record::auth, protocol version 1, actors/legacy_servers.hpp)
// goes through the same states with other connection roles: registration is a `legacy_login` with
// the sealed credentials, which are kept (not deleted) and sent again at every trusted connection.
// A server whose hello names another version than the one offered switches roles: legacy ones
// register by login; an upgraded one registers with certificates (its pin as the expected
// thumbprint), after which its credentials are deleted. In awaiting_validation,
// certificate_changed, certificate_mismatch, auth_failed and
// reregistration_required the server is not contacted at all.
// Connection messages from the broker and the connector carry a generation number, so replies about
// an abandoned connection are ignored.
//
// Thread: the actor runs on CAF's scheduler threads; its TLS crypto runs there too, the broker only
// moves bytes.
#pragma once

#include <caf/fwd.hpp>

#include "actors/context.hpp"
#include "storage/records.hpp"

namespace certfleet {

/// The actors a server actor works with.
struct server_peers {
  /// The fleet registry (supervisor.hpp): hears (state_atom, server_presence) for list and status.
  caf::actor registry;
  /// Grants handshake slots (admission_actor.hpp).
  caf::actor admission;
  /// Holds the sealed credentials (custody_actor.hpp).
  caf::actor custody;
};

/// Spawns the actor for `rec` (already persisted). Its writes go to `ctx->storage`.
caf::actor spawn_server_actor(caf::actor_system& sys, context_ptr ctx, server_peers peers,
                              server_record rec);

}  // namespace certfleet
