// The event bus: publishes durable trust-change events, in seq order and without gaps, to
// in-process subscribers (the control socket's `events --follow` is one of them).
//
// Events are written to the database (with their gap-free seq) by whoever changes state; that
// writer then tells the bus (published_atom, last_seq). The bus reads the new range back from the
// store, so publication order is always seq order even when several actors write at once.
//
// A subscriber is an `event_sink`: a bounded queue drained by the sink's own delivery thread, which
// calls the subscriber's callback. The bus never waits for a subscriber. A subscriber that is
// replaying history pulls from the store at its own pace; a live subscriber whose queue is full has
// fallen behind and is cut off, told the last seq it was given, so it can resubscribe with --since
// and lose nothing.
//
//   subscribe(since) --> catching_up --(cursor reaches head)--> live --(queue full)--> cut_off
//                         ^  pages read from the store            |
//                         +---------------------------------------+ (never: live stays live)
#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "actors/context.hpp"
#include "actors/manager.hpp"

namespace certfleet {

/// Default queue length of one subscriber before it counts as fallen behind.
inline constexpr size_t default_subscriber_queue = 65536;

/// Spawns the bus. It answers (subscribe_atom, subscriber_spec) with the subscription handle
/// (a std::unique_ptr<event_subscription> cannot travel, so it replies with the sink id; use
/// `subscribe_events` below).
caf::actor spawn_event_bus(caf::actor_system& sys, context_ptr ctx);

/// Subscribes through `bus` and returns the subscription; destroying it unsubscribes and joins its
/// delivery thread. Blocking: call from outside actors.
caf::expected<std::unique_ptr<event_subscription>> subscribe_events(
    caf::actor_system& sys, const caf::actor& bus, uint64_t since, event_filter filter,
    manager::event_fn on_event, manager::cutoff_fn on_cutoff,
    size_t queue_capacity = default_subscriber_queue);

}  // namespace certfleet
