// `events.subscribe` on the control socket: replays stored events and, with `follow`, streams live
// ones on the requesting connection (docs/control-api.md, "events.subscribe").
//
// The bus's queue for this subscriber is the only queue between the bus and the socket: its
// delivery thread writes event lines straight to the connection, and the bus never waits for it.
// A client that does not read holds back its own delivery thread only; its queue fills and the bus
// cuts it off; once the queued lines are written, a `cutoff` line names the last seq it was given,
// so it can resume with `since` and lose nothing.
#pragma once

#include <cstddef>

#include "actors/manager.hpp"
#include "common/jsonl_server.hpp"
#include "control/protocol.hpp"

namespace certfleet::control {

/// Serves the subscription `req` on `c` until the replay ends (follow=false), a cutoff, the client
/// leaving or the server stopping; `queue_lines` bounds the events queued for the connection.
/// Returns false when the connection must close.
bool stream_events(jsonl::connection& c, manager& m, const request& req, size_t queue_lines);

}  // namespace certfleet::control
