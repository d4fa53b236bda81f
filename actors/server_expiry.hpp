// Which pinned server certificates are near their notAfter: the decisions behind the
// `server_certificate_expiring` event, without the actor that raises it.
//
// The renewal actor (renewal_actor.hpp) keeps one `server_expiry_watchlist` for the whole fleet.
// Server actors tell it the validity period of their pinned certificate when they learn it, and on
// each of its ticks it asks which certificates have entered the warning window since. The list is
// indexed by the instant each window opens, so a tick costs nothing for the certificates that are
// not due, however large the fleet. The time is always an argument (docs/lifecycle.md, "Pinned
// server certificates", states the rules).
//
// Thread-safety: a plain value owned by one actor.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "actors/renewal_schedule.hpp"

namespace certfleet {

/// One server's pinned certificate, as its server actor reports it.
struct watched_certificate {
  std::string server_id;
  /// The pinned certificate's SHA-256 thumbprint, as text.
  std::string thumbprint;
  wall_time not_before;
  wall_time not_after;
  /// Its `server_certificate_expiring` event was raised already (the server record keeps this).
  bool warned = false;
};

/// A `server_certificate_expiring` event that is due.
struct expiry_warning {
  std::string server_id;
  std::string thumbprint;
  /// `days_until(not_after, now)`; negative once notAfter has passed (within the tolerance).
  int64_t days_left = 0;
  /// notAfter in ISO 8601 UTC.
  std::string not_after;
  /// Past notAfter, still accepted within `daemon.clock_skew_tolerance_s`.
  bool expired = false;
};

/// The event's details: {"thumbprint", "not_after", "days_left", "expired"}.
void to_json(nlohmann::json& out, const expiry_warning& w);

/// The log warning: which server certificate expires when, and what to do about it.
std::string describe(const expiry_warning& w);

class server_expiry_watchlist {
 public:
  /// `skew_tolerance` is daemon.clock_skew_tolerance_s, `warning_days`
  /// identity.renewal_warning_days.
  server_expiry_watchlist(std::chrono::seconds skew_tolerance, int warning_days)
      : tolerance_(skew_tolerance), warning_days_(warning_days) {}

  /// Watches `c`, replacing what was watched for its server (a new pin, new dates).
  void watch(watched_certificate c);
  /// Stops watching the server (removed, or no longer pinned).
  void unwatch(const std::string& server_id);

  /// The warnings due at `now`: every watched certificate that is in its warning window and was
  /// not warned about yet, each returned once (it is then marked warned). A certificate already
  /// past notAfter plus the tolerance is not warned about: the handshake refuses it instead.
  std::vector<expiry_warning> due(wall_time now);

  size_t size() const { return by_server_.size(); }

 private:
  struct entry {
    watched_certificate cert;
    // Its key in pending_, while it is there.
    std::optional<wall_time> queued_at;
  };
  void queue(entry& e, wall_time at);

  std::chrono::seconds tolerance_;
  int warning_days_;
  std::map<std::string, entry> by_server_;
  // The certificates not warned about yet, by the instant to look at them again (the opening of
  // their window), then by server id.
  std::set<std::pair<wall_time, std::string>> pending_;
};

}  // namespace certfleet
