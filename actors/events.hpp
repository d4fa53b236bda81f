// Building trust-change events (docs/control-api.md lists the types and their details).
#pragma once

#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/address.hpp"
#include "common/vocabulary.hpp"
#include "storage/records.hpp"

namespace certfleet {

/// An event about `r` of `type` with `details`; seq and time are assigned by the store.
inline event_record make_event(const server_record& r, event_type type,
                               const nlohmann::json& details) {
  event_record e;
  e.type = to_string(type);
  e.server_id = r.id;
  e.address = format_address(r.host, r.port);
  e.details = details.is_null() ? "{}" : details.dump();
  return e;
}

/// Logs each stored event on one line naming its type and server, which the journald sink turns
/// into the CERTFLEET_EVENT and CERTFLEET_SERVER_ID fields; connectivity events at debug level
/// (there is one per connection), trust changes at info.
inline void log_stored(const std::vector<event_record>& stored) {
  for (const auto& e : stored) {
    bool connectivity = e.type == to_string(event_type::connection_up) ||
                        e.type == to_string(event_type::connection_down);
    spdlog::log(connectivity ? spdlog::level::debug : spdlog::level::info,
                "event {}: {} for server {} ({})", e.seq, e.type, e.server_id, e.address);
  }
}

}  // namespace certfleet
