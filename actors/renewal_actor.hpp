// The renewal actor: prompts the operator to renew the manager certificate, and warns about
// pinned server certificates near their expiry.
//
// It holds the certificate's `renewal_schedule` (actors/renewal_schedule.hpp) and is woken by the
// timer actor (one timer for the whole daemon) with (tick_atom), at most `renewal_tick` apart.
// When a prompt is due it logs a warning and has the storage actor append a durable
// `certificate_renewal_due` event, then store the prompt's record in the meta family, in that
// order, so a crash in between repeats a prompt instead of losing one. At start it reads the last
// record back, so a restart neither repeats a prompt early nor forgets one. The clock is the
// context's `now_ms`, which tests inject.
//
// It also watches the pinned server certificates (server_expiry.hpp): each server actor reports
// its pinned certificate's validity period with (watch_atom, watched_certificate) when it learns it
// (and at start), or (watch_atom, remove_atom, id) when there is none to watch any more. On each
// tick, and on each report, every certificate that entered its warning window gets one
// (expiring_atom, thumbprint, details) sent back to its server actor, which stores the durable
// `server_certificate_expiring` event and remembers it in the server record, so that it is raised
// once per certificate across restarts. No timer per server.
//
// Thread: a scheduler thread; its only disk access is one point read at start.
#pragma once

#include <chrono>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/context.hpp"

namespace certfleet {

/// The meta key of the last renewal prompt's record.
inline constexpr const char* renewal_record_key = "renewal_prompt";

/// How often the timer wakes the renewal actor: a wall clock set forward is noticed this late.
inline constexpr std::chrono::seconds renewal_tick{60};

caf::actor spawn_renewal_actor(caf::actor_system& sys, context_ptr ctx);

}  // namespace certfleet
