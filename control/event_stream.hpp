// `events.subscribe` on the control socket: replays stored events and, with `follow`, streams live
// ones on the requesting connection (docs/control-api.md, "events.subscribe").
//
// The manager's bus delivers events on its own thread into the connection's bounded queue and
// never waits for the connection; the connection's thread writes them out. A subscriber whose
// queue is full is cut off with a `cutoff` line naming the last seq it was given, so it can resume
// with `since` and lose nothing.
#pragma once

#include <cstddef>

#include "actors/manager.hpp"
#include "common/jsonl_server.hpp"
#include "control/protocol.hpp"

namespace certfleet::control {

/// Serves the subscription `req` on `c` until the replay ends (follow=false), a cutoff, the client
/// leaving or the server stopping; `queue_lines` bounds the lines queued for the connection.
/// Returns false when the connection must close.
bool stream_events(jsonl::connection& c, manager& m, const request& req, size_t queue_lines);

}  // namespace certfleet::control
