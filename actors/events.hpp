// Building trust-change events (docs/control-api.md lists the types and their details).
#pragma once

#include <string>

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

/// The same with the type by name; prefer the `event_type` overload (a misspelt name compiles).
inline event_record make_event(const server_record& r, std::string type,
                               const nlohmann::json& details) {
  event_record e;
  e.type = std::move(type);
  e.server_id = r.id;
  e.address = format_address(r.host, r.port);
  e.details = details.is_null() ? "{}" : details.dump();
  return e;
}

}  // namespace certfleet
