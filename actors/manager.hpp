// The manager: certfleet's daemon core, as a C++ object an embedder (or certfleetd) owns.
//
// `manager::start` opens the state directory, loads the manager identity and every server from the
// database, and spawns the actor system: one server actor per backup server, the supervisor
// (credential retention and deletion, reconnect backoff, handshake admission, restarts), the event
// bus and the I/O broker (see actors/README.md for the diagram). Every member function below is a
// synchronous request to those actors with a deadline: it is safe to call from any thread except
// an actor's, and never blocks longer than `request_timeout`.
//
// Errors: each call returns `caf::expected`/`caf::error` with an `ec` code and a sentence that says
// what to do ("server s-1f3a presented 3F2A..., not 77B0...: quote the presented thumbprint").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/latency_histogram.hpp"
#include "common/error.hpp"
#include "config/settings.hpp"
#include "crypto/secret.hpp"
#include "crypto/thumbprint.hpp"
#include "storage/records.hpp"

namespace certfleet {

/// What `server add` asks for.
struct add_server_request {
  std::string host;
  uint16_t port = 0;
  std::string name;       // defaults to host:port
  std::string account;    // needs the Backup Administrator role on the server
  secret_bytes password;  // sealed at once; never logged
  std::optional<thumbprint> expected;
};

/// A server as the CLI shows it.
struct server_view {
  server_record record;
  bool connected = false;
  bool credentials_retained = false;
  std::string inventory_json;  // latest collected inventory, "" when none
};

struct status_view {
  size_t servers = 0;
  std::vector<std::pair<std::string, size_t>> per_state;  // state name -> count
  size_t connected = 0;
  uint64_t handshakes = 0;  // completed since start
  uint64_t handshake_failures = 0;
  uint64_t resumed_handshakes = 0;  // of `handshakes`, those that resumed a TLS session
  uint64_t collections = 0;
  latency_histogram::summary handshake_latency;     // connect start to TLS established
  latency_histogram::summary collection_latency;    // `collect` sent to inventory stored
  latency_histogram::cumulative handshake_buckets;  // the same two, as Prometheus buckets
  latency_histogram::cumulative collection_buckets;
  latency_histogram::summary storage_write_latency;  // one write of the storage actor
  latency_histogram::cumulative storage_write_buckets;
  uint64_t last_event_seq = 0;
  size_t credentials_retained = 0;  // servers whose sealed credentials are kept
  size_t subscribers = 0;           // event subscribers, in process and over the control socket
  /// Seconds since the trusted server collected least recently was last collected (since it was
  /// added, when never); 0 when no server is trusted.
  int64_t oldest_collection_age_s = 0;
  std::vector<std::string> last_errors;  // newest first, at most 10
  std::string manager_thumbprint;
  std::string manager_not_after;
  int64_t manager_days_left = 0;     // whole days to notAfter; negative once expired
  bool manager_renewal_due = false;  // within identity.renewal_warning_days of notAfter
  /// Pinned server certificates within identity.renewal_warning_days of their notAfter (those
  /// already past it included), and the earliest notAfter of any (Unix ms, 0 when none).
  size_t server_certificates_expiring = 0;
  int64_t server_certificate_earliest_not_after_ms = 0;
};

/// A manager certificate rotation as `certfleet cert status` shows it (docs/lifecycle.md).
struct rotation_view {
  /// "none" (never renewed), "rolling_out", "retiring", "completed" or "abandoned".
  std::string phase = "none";
  std::string old_thumbprint;
  std::string new_thumbprint;
  std::string new_not_after;  // ISO 8601 UTC
  std::string old_not_after;
  int64_t started_ms = 0;
  int64_t completed_ms = 0;
  size_t servers = 0;  // servers that had registered the old certificate
  size_t moved = 0;    // of those, how many hold the new one
  struct pending_server {
    std::string id;
    std::string last_error;  // the agent's refusal, if it refused
  };
  /// Servers still to receive the new certificate, pending since `started_ms`.
  std::vector<pending_server> pending;
  /// Servers left behind by the old certificate's expiry (state reregistration_required).
  std::vector<std::string> missed;
  /// Moved servers whose agent still has to be told to drop the old certificate.
  size_t drops_owed = 0;
};

/// Which events a subscriber wants.
struct event_filter {
  std::string type;       // "" = all
  std::string server_id;  // "" = all
};

/// A live subscription; destroying it unsubscribes.
class event_subscription {
 public:
  virtual ~event_subscription() = default;
};

class manager {
 public:
  /// Called for each event in seq order, on the subscriber's own delivery thread; blocking holds
  /// back this subscriber alone (its queue fills and it is cut off). Return false to stop.
  using event_fn = std::function<bool(const event_record&)>;
  /// Called once when the subscriber fell too far behind and was cut off: `last_seq` is the last
  /// seq it was given; resubscribe with `since = last_seq` to continue without loss.
  using cutoff_fn = std::function<void(uint64_t last_seq, const std::string& why)>;

  static caf::expected<std::unique_ptr<manager>> start(const settings& cfg);
  virtual ~manager() = default;

  virtual caf::expected<server_view> add_server(add_server_request req) = 0;
  /// Adds many servers at once: one result per request, in order, each what `add_server` would
  /// have answered had the requests been made one after the other (a duplicate address within the
  /// batch fails as already known). All accepted entries are stored with one credential flush and
  /// one fsync, so this is the way to add hundreds per second. When the manager does not answer in
  /// time (`request_timeout`), every entry carries that error, and some may have been added.
  virtual std::vector<caf::expected<server_view>> add_servers(
      std::vector<add_server_request> reqs) = 0;
  /// Validates exactly the presented thumbprint and pins it.
  virtual caf::expected<server_view> trust(const std::string& id, const thumbprint& presented,
                                           const std::string& by) = 0;
  virtual caf::expected<server_view> reject(const std::string& id) = 0;
  virtual caf::error remove(const std::string& id) = 0;
  /// New credentials for a server in auth_failed or pending_registration; retries at once.
  virtual caf::expected<server_view> set_credentials(const std::string& id, std::string account,
                                                     secret_bytes password) = 0;
  virtual caf::expected<std::vector<server_view>> list() = 0;
  virtual caf::expected<server_view> show(const std::string& id) = 0;
  virtual status_view status() = 0;

  /// `certfleet cert renew`: generates the next identity and rolls it out to every server that
  /// registered the current one (docs/lifecycle.md). `ec::invalid_state` while a rotation runs.
  virtual caf::expected<rotation_view> renew_certificate(std::string friendly_name) = 0;
  /// The last rotation's progress.
  virtual caf::expected<rotation_view> rotation_status() = 0;

  /// Replays stored events with seq > `since`, then follows live ones, in order, without gaps.
  /// `queue_events` bounds the subscriber's queue (actors/event_bus.hpp): a subscriber that falls
  /// that far behind is cut off.
  virtual caf::expected<std::unique_ptr<event_subscription>> subscribe(
      uint64_t since, event_filter filter, event_fn on_event, cutoff_fn on_cutoff,
      size_t queue_events = 65536) = 0;

  /// Stops accepting work, closes connections and flushes state. Idempotent.
  virtual void stop() = 0;
};

}  // namespace certfleet
