// Words of certfleet's domain that travel as text (configuration, events, the control socket) but
// are handled as enums in code, each with one `to_string` and one `parse`.
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace certfleet {

/// How a server's presented thumbprint becomes trusted (`daemon.trust_policy`).
enum class trust_policy {
  /// An admin validates every thumbprint that was not given in advance.
  manual,
  /// Only thumbprints given in advance are trusted; adding a server without one is refused.
  expected_only,
  /// Trust on first use: the first thumbprint presented is pinned (the event says so).
  tofu,
};

/// "manual", "expected-only", "tofu": the spelling of the configuration file.
const char* to_string(trust_policy p);
/// The policy spelled `text`; nullopt for anything else.
std::optional<trust_policy> parse_trust_policy(std::string_view text);

/// Every event type the daemon emits (docs/control-api.md, "event"), in the order listed there.
enum class event_type {
  server_added,
  server_removed,
  credentials_retained,
  credentials_deleted,
  registered,
  validation_required,
  validated,
  rejected,
  certificate_changed,
  certificate_mismatch,
  auth_failed,
  connection_up,
  connection_down,
  certificate_renewal_due,
  rotation_started,
  server_rotated,
  rotation_completed,
  reregistration_required,
  server_certificate_expiring,
};

inline constexpr std::array<event_type, 19> all_event_types{
    event_type::server_added,
    event_type::server_removed,
    event_type::credentials_retained,
    event_type::credentials_deleted,
    event_type::registered,
    event_type::validation_required,
    event_type::validated,
    event_type::rejected,
    event_type::certificate_changed,
    event_type::certificate_mismatch,
    event_type::auth_failed,
    event_type::connection_up,
    event_type::connection_down,
    event_type::certificate_renewal_due,
    event_type::rotation_started,
    event_type::server_rotated,
    event_type::rotation_completed,
    event_type::reregistration_required,
    event_type::server_certificate_expiring,
};

/// The type's name as stored and sent ("validation_required").
const char* to_string(event_type t);
/// The type named `text`; nullopt for anything else.
std::optional<event_type> parse_event_type(std::string_view text);

/// True for the types that record trust decisions and credential custody (everything but
/// `connection_up` and `connection_down`).
constexpr bool is_trust_event(event_type t) {
  return t != event_type::connection_up && t != event_type::connection_down;
}

}  // namespace certfleet
