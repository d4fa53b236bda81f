// One backup server: an actor that owns its connection lifecycle, its TLS client session and its
// thumbprint state. Every state is persisted in its server_record before the actor acts on it, so
// a restarted daemon (or a restarted actor) resumes where it was.
//
//                      +--- connect/TLS/transport failure: backoff, retry ---+
//                      v                                                     |
//   pending_registration --TLS up, credentials sent--> registering ----------+
//        |  (credentials sealed,                         |  registered          |  denied
//        |   deleted on leaving)                         v                      v
//        |                          expected matches / tofu?   auth_failed <-- credentials(new)
//        |                            yes |        | no                  \---->
//        pending_registration |                                v        v | trusted <--
//        awaiting_validation |                            |  ^   trust(presented) | expected
//        differs           |  | v                            |  +-- trust(presented) --+
//   certificate_mismatch              +-- pin differs --> certificate_changed
//   (trust(presented) by an admin only)
//
// trusted: mutual TLS pinned on the leaf's SHA-256, then `collect` every collect_interval
// (jittered); a lost connection backs off and reconnects. In certificate_changed, awaiting
// validation, certificate_mismatch and auth_failed the server is not contacted at all.
//
// Messages handled in every state: show, remove; the connection messages of the broker and the
// connector carry a generation number so that replies about an abandoned connection are ignored.
#pragma once

#include <caf/fwd.hpp>

#include "actors/context.hpp"
#include "storage/records.hpp"

namespace certfleet {

/// Spawns the actor for `rec` (already persisted) under `supervisor`, which grants its handshake
/// slots, keeps its credentials and hears how it stands.
caf::actor spawn_server_actor(caf::actor_system& sys, context_ptr ctx, caf::actor supervisor,
                              server_record rec);

}  // namespace certfleet
