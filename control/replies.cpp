#include "control/replies.hpp"

#include <chrono>

#include "actors/renewal_schedule.hpp"
#include "control/protocol.hpp"

namespace certfleet::control {

using json = nlohmann::json;

namespace {

json optional_thumbprint(const std::optional<thumbprint>& t) {
  return t ? json(t->to_string()) : json(nullptr);
}

json optional_ms(int64_t ms) {
  return ms != 0 ? json(ms) : json(nullptr);
}

/// Whole days from now to `not_after_ms`, rounded down (negative once past), as
/// docs/lifecycle.md counts them; null when not known.
json days_left(int64_t not_after_ms) {
  if (not_after_ms == 0) return nullptr;
  constexpr int64_t day_ms = 86'400'000;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  auto diff = not_after_ms - now;
  return diff >= 0 ? diff / day_ms : -((-diff + day_ms - 1) / day_ms);
}

}  // namespace

json server_json(const server_view& v, bool with_inventory) {
  const auto& r = v.record;
  bool expiry_warned = r.expiry_warned && r.pinned && *r.expiry_warned == *r.pinned;
  json j{{"id", r.id},
         {"name", r.name},
         {"host", r.host},
         {"port", r.port},
         {"address", format_address(r.host, r.port)},
         {"state", to_string(r.state)},
         {"account", r.account},
         {"expected_thumbprint", optional_thumbprint(r.expected)},
         {"presented_thumbprint", optional_thumbprint(r.presented)},
         {"pinned_thumbprint", optional_thumbprint(r.pinned)},
         {"validated_by", r.validated_by},
         {"remote_id", r.remote_id},
         {"last_error", r.last_error},
         {"created_ms", r.created_ms},
         {"updated_ms", r.updated_ms},
         {"last_seen_ms", r.last_seen_ms},
         {"last_collection_ms", r.last_collection_ms},
         {"failed_attempts", r.failed_attempts},
         {"certificate_not_before_ms", optional_ms(r.certificate_not_before_ms)},
         {"certificate_not_after_ms", optional_ms(r.certificate_not_after_ms)},
         {"certificate_days_left", days_left(r.certificate_not_after_ms)},
         {"certificate_expiry_warned", expiry_warned},
         {"auth", to_string(r.auth)},
         {"connected", v.connected},
         {"credentials_retained", v.credentials_retained}};
  if (with_inventory) {
    if (v.inventory_json.empty()) {
      j["inventory"] = nullptr;
    } else {
      auto inv = json::parse(v.inventory_json, nullptr, false);
      j["inventory"] = inv.is_discarded() ? json(v.inventory_json) : inv;
    }
  }
  return j;
}

json latency_json(const latency_histogram::summary& l) {
  return {{"count", l.count},
          {"p50_ms", l.p50_ms},
          {"p90_ms", l.p90_ms},
          {"p99_ms", l.p99_ms},
          {"max_ms", l.max_ms}};
}

json status_json(const status_view& s) {
  json per_state = json::object();
  for (const auto& [state, count] : s.per_state) per_state[state] = count;
  return {{"servers", s.servers},
          {"per_state", per_state},
          {"connected", s.connected},
          {"handshakes", s.handshakes},
          {"handshake_failures", s.handshake_failures},
          {"resumed_handshakes", s.resumed_handshakes},
          {"collections", s.collections},
          {"latency",
           {{"handshake", latency_json(s.handshake_latency)},
            {"collection", latency_json(s.collection_latency)}}},
          {"last_event_seq", s.last_event_seq},
          {"last_errors", s.last_errors},
          {"manager_thumbprint", s.manager_thumbprint},
          {"manager_not_after", s.manager_not_after},
          {"manager_days_left", s.manager_days_left},
          {"manager_renewal_due", s.manager_renewal_due},
          {"server_certificates_expiring", s.server_certificates_expiring},
          {"server_certificate_earliest_not_after",
           s.server_certificate_earliest_not_after_ms > 0
               ? json(iso8601_utc(wall_time{
                     std::chrono::milliseconds{s.server_certificate_earliest_not_after_ms}}))
               : json(nullptr)}};
}

json event_json(const event_record& e) {
  auto details = json::parse(e.details.empty() ? "{}" : e.details, nullptr, false);
  return {{"seq", e.seq},         {"time_ms", e.time_ms},
          {"type", e.type},       {"server_id", e.server_id},
          {"address", e.address}, {"details", details.is_discarded() ? json(e.details) : details}};
}

}  // namespace certfleet::control
