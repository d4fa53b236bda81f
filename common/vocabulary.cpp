#include "common/vocabulary.hpp"

namespace certfleet {

const char* to_string(trust_policy p) {
  switch (p) {
    case trust_policy::manual:
      return "manual";
    case trust_policy::expected_only:
      return "expected-only";
    case trust_policy::tofu:
      return "tofu";
  }
  return "manual";
}

std::optional<trust_policy> parse_trust_policy(std::string_view text) {
  for (auto p : {trust_policy::manual, trust_policy::expected_only, trust_policy::tofu})
    if (text == to_string(p)) return p;
  return std::nullopt;
}

const char* to_string(event_type t) {
  switch (t) {
    case event_type::server_added:
      return "server_added";
    case event_type::server_removed:
      return "server_removed";
    case event_type::credentials_retained:
      return "credentials_retained";
    case event_type::credentials_deleted:
      return "credentials_deleted";
    case event_type::registered:
      return "registered";
    case event_type::validation_required:
      return "validation_required";
    case event_type::validated:
      return "validated";
    case event_type::rejected:
      return "rejected";
    case event_type::certificate_changed:
      return "certificate_changed";
    case event_type::certificate_mismatch:
      return "certificate_mismatch";
    case event_type::auth_failed:
      return "auth_failed";
    case event_type::connection_up:
      return "connection_up";
    case event_type::connection_down:
      return "connection_down";
    case event_type::certificate_renewal_due:
      return "certificate_renewal_due";
    case event_type::rotation_started:
      return "rotation_started";
    case event_type::server_rotated:
      return "server_rotated";
    case event_type::rotation_completed:
      return "rotation_completed";
    case event_type::reregistration_required:
      return "reregistration_required";
    case event_type::server_certificate_expiring:
      return "server_certificate_expiring";
  }
  return "server_added";
}

std::optional<event_type> parse_event_type(std::string_view text) {
  for (auto t : all_event_types)
    if (text == to_string(t)) return t;
  return std::nullopt;
}

}  // namespace certfleet
