// The storage actor: the one writer of the state store (storage/state_store.hpp) for the actors.
//
// It runs on a thread of its own (spawned detached), so that no fsync, flush, compaction or scrub
// ever holds one of the scheduler threads on which the server actors do their TLS work.
//
// Group commit: writes that arrive while a batch is being prepared join it. The actor queues each
// write with its response promise and sends itself a flush message; everything already in its
// mailbox when that message comes up goes into one batch. A batch with at least one durable write
// (a trust decision) is written with one fsync; a batch of connectivity writes only goes to the
// write-ahead log (the store's log syncer makes it durable shortly after). A durable write is
// answered only once its batch is durable, so a trust decision is acknowledged to the admin after
// the fsync; the writer's order is kept (one mailbox, batches in arrival order).
//
// Messages (requests answer as shown; failures answer with the store's error):
//   (persist_atom, server_record, std::vector<event_record> events, bool durable)
//       -> std::vector<event_record>  the events as stored (seq and time assigned)
//   (persist_atom, server_record, std::vector<event_record> events)  not durable, no answer
//   (inventory_atom, std::string id, std::string json)             -> unit (logged on failure)
//   (remove_atom, std::string id, std::vector<event_record> events) -> std::vector<event_record>
//   (scrub_atom, std::vector<std::string> ids, std::vector<event_record> events)
//       -> std::vector<event_record>  credentials erased unrecoverably
//       (state_store::erase_credentials)
//   (add_atom, std::vector<server_record>, std::vector<event_record> events)
//       -> std::vector<event_record>  new servers, one fsynced batch (state_store::put_servers)
//   (show_atom, server_view live) -> server_view  `live` with the stored inventory and whether
//       credentials are retained (the server actor delegates `show` here)
//   (caf::get_atom, std::string id) -> server_record  as stored; ec::not_found when there is none
//       (the registry restarts a failed server actor from it)
//   (list_atom) -> std::vector<server_view>  every stored record and whether its credentials are
//       retained (the registry adds the live connection state)
//   (status_atom) -> storage_status  retained credentials, the oldest collection of a trusted
//       server and the pinned server certificates near expiry (actors/atoms.hpp)
//   Reads first write the queued batch, so they see every write sent before them.
//   (trim_events_atom)  applies event_retention_count / event_retention_days (the timer's job)
//   (stop_atom)  finishes the queued batch, then quits
// Stored events are published to the event bus (published_atom with the last seq).
#pragma once

#include <caf/fwd.hpp>

#include "actors/context.hpp"

namespace certfleet {

/// Spawns the storage actor on its own thread; `detached = false` runs it on the scheduler, for
/// tests on CAF's deterministic test coordinator.
caf::actor spawn_storage_actor(caf::actor_system& sys, context_ptr ctx, bool detached = true);

}  // namespace certfleet
