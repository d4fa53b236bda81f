// How the control socket renders the manager's views as reply JSON (docs/control-api.md,
// "Objects"). Pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "actors/latency_histogram.hpp"
#include "actors/manager.hpp"

namespace certfleet::control {

/// A `server` object; `with_inventory` adds `inventory` (server.show).
nlohmann::json server_json(const server_view& v, bool with_inventory);

/// The result of `status`.
nlohmann::json status_json(const status_view& s);

/// An `event` object; `details` as stored, parsed back into an object.
nlohmann::json event_json(const event_record& e);

/// A latency summary `{count, p50_ms, p90_ms, p99_ms, max_ms}`.
nlohmann::json latency_json(const latency_histogram::summary& l);

}  // namespace certfleet::control
