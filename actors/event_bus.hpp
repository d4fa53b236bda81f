// The event bus: publishes durable trust-change events, in seq order and without gaps, to
// in-process subscribers (the control socket's `events --follow` is one of them).
//
// Events are written to the database (with their gap-free seq) by whoever changes state; that
// writer then tells the bus, in one of two ways:
//   (published_atom, std::vector<event_record>)  the events just stored, as `append_events`
//                                                returned them: the bus publishes them from
//                                                memory (preferred: no read-back);
//   (published_atom, uint64_t last_seq)          only the newest seq: the bus reads the events it
//                                                has not seen from the store.
// Either way publication is in seq order, even when several actors write at once (a batch that
// arrives before the one ahead of it waits), and stops at the store's durable seq: events that are
// not fsynced yet wait until the store's listener announces them (actors/manager.cpp).
//
// The bus keeps the most recent `default_event_window` published events in memory; a subscriber
// starting inside that window replays from memory, an older one from the store.
//
// A subscriber is an `event_sink`: one bounded queue, drained by the sink's own delivery thread,
// which calls the subscriber's callback. It is the only queue between the bus and the subscriber.
// The bus never waits for a subscriber; the callback may block, which holds back this subscriber
// alone (its queue fills and it is cut off). A subscriber that is replaying history is fed at the
// pace its queue drains; a live subscriber whose queue is full has fallen behind and is cut off,
// told the last seq it was given, so it can resubscribe with --since and lose nothing.
//
// clang-format off
//   subscribe(since) --> catching_up --(cursor reaches head)--> live --(queue full)--> cut_off
//                         ^  window or store pages               |
//                         +--------------------------------------+ (never: live stays live)
// clang-format on
#pragma once

#include <memory>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "actors/atoms.hpp"
#include "actors/context.hpp"
#include "actors/manager.hpp"
#include "storage/records.hpp"

namespace certfleet {

/// Default queue length of one subscriber before it counts as fallen behind.
inline constexpr size_t default_subscriber_queue = 65536;

/// Recent events the bus keeps in memory for subscribers that start a little behind.
inline constexpr size_t default_event_window = 65536;

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

// The batch form of (published_atom, ...) carries std::vector<event_record> by value inside the
// process only; actors/atoms.hpp declares it a message type.
