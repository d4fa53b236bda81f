// Message vocabulary between the manager's actors (CAF 0.17 atoms and message types).
//
// Types sent only inside this process are whitelisted with CAF_ALLOW_UNSAFE_MESSAGE_TYPE: they are
// never serialised, so they need no inspect().
#pragma once

#include <memory>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "actors/manager.hpp"
#include "storage/records.hpp"

namespace certfleet {

// io broker
using adopt_atom = caf::atom_constant<caf::atom("adopt")>;
using adopted_atom = caf::atom_constant<caf::atom("adopted")>;
using bytes_atom = caf::atom_constant<caf::atom("bytes")>;
using write_atom = caf::atom_constant<caf::atom("write")>;
using close_atom = caf::atom_constant<caf::atom("close")>;
using disconnected_atom = caf::atom_constant<caf::atom("disconn")>;

// server actor lifecycle
using connect_atom = caf::atom_constant<caf::atom("connect")>;
using connected_atom = caf::atom_constant<caf::atom("connected")>;
using connect_failed_atom = caf::atom_constant<caf::atom("connfail")>;
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;
using liveness_atom = caf::atom_constant<caf::atom("liveness")>;
using collect_atom = caf::atom_constant<caf::atom("collect")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using slot_atom = caf::atom_constant<caf::atom("slot")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using state_atom = caf::atom_constant<caf::atom("state")>;

// storage actor
using persist_atom = caf::atom_constant<caf::atom("persist")>;
using inventory_atom = caf::atom_constant<caf::atom("inventory")>;
using scrub_atom = caf::atom_constant<caf::atom("scrub")>;

// fleet services
using registry_atom = caf::atom_constant<caf::atom("registry")>;
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;
using trim_events_atom = caf::atom_constant<caf::atom("trimevts")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using meta_atom = caf::atom_constant<caf::atom("meta")>;
// server certificate expiry (renewal actor <-> server actors)
using watch_atom = caf::atom_constant<caf::atom("watch")>;
using expiring_atom = caf::atom_constant<caf::atom("expiring")>;

// control requests
using add_atom = caf::atom_constant<caf::atom("add")>;
using trust_atom = caf::atom_constant<caf::atom("trust")>;
using reject_atom = caf::atom_constant<caf::atom("reject")>;
using remove_atom = caf::atom_constant<caf::atom("remove")>;
using credentials_atom = caf::atom_constant<caf::atom("creds")>;
using show_atom = caf::atom_constant<caf::atom("show")>;
using list_atom = caf::atom_constant<caf::atom("list")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;

// manager certificate rotation (actors/rotation_actor.hpp)
using renew_atom = caf::atom_constant<caf::atom("renew")>;
using rotation_atom = caf::atom_constant<caf::atom("rotation")>;
using rotated_atom = caf::atom_constant<caf::atom("rotated")>;
using retired_atom = caf::atom_constant<caf::atom("retired")>;
using reregister_atom = caf::atom_constant<caf::atom("rereg")>;
using forward_atom = caf::atom_constant<caf::atom("forward")>;

// event bus
using published_atom = caf::atom_constant<caf::atom("published")>;
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using unsubscribe_atom = caf::atom_constant<caf::atom("unsub")>;

/// Whether a server currently has a live connection and how it stands, as the supervisor tracks
/// it for `list` and `status` without asking 100,000 actors.
struct server_presence {
  std::string id;
  server_state state = server_state::pending_registration;
  bool connected = false;
  std::string last_error;
};

/// What the storage actor adds to `status` (it reads the store on its own thread).
struct storage_status {
  size_t credentials_retained = 0;
  /// When the trusted server collected least recently was last collected (added, when never);
  /// 0 when no server is trusted.
  int64_t oldest_collection_ms = 0;
  /// Pinned server certificates within identity.renewal_warning_days of their notAfter, those
  /// already past it included.
  size_t certificates_expiring = 0;
  /// The earliest notAfter of a pinned server certificate (Unix ms); 0 when none is known.
  int64_t earliest_certificate_not_after_ms = 0;
};

/// An in-process subscriber as the bus holds it.
struct subscriber_spec {
  uint64_t id = 0;
  uint64_t since = 0;
  event_filter filter;
  manager::event_fn on_event;
  manager::cutoff_fn on_cutoff;
};

}  // namespace certfleet

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::server_record)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<certfleet::event_record>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<certfleet::server_record>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::server_view)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::server_presence)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::add_server_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::subscriber_spec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::thumbprint)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::secret_bytes)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<certfleet::server_view>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::status_view)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::storage_status)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::rotation_view)
