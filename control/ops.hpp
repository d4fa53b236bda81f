// The control socket's op handler table: one function per request op (docs/control-api.md, "Ops"),
// each turning a parsed request into the reply's result by calling the manager.
//
// Handlers run on the requesting connection's thread and block on the manager (each call bounded
// by its request timeout). Access has been checked before a handler runs (control/protocol.hpp,
// `required_access`).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "actors/manager.hpp"
#include "control/protocol.hpp"

namespace certfleet::control {

/// What a handler may use: the manager and who asked.
struct op_context {
  manager& m;
  const peer_identity& peer;

  /// How a trust decision made by this peer is recorded ("admin (uid N)").
  std::string validated_by() const;
};

/// A handler: the reply's result, or the error to reply with. `req.args` may hold a password; the
/// handler moves it into secret memory and scrubs the field.
using op_fn = caf::expected<nlohmann::json> (*)(op_context& ctx, request& req);

/// The handler of `op`; nullptr for an unknown op and for `events.subscribe` (a stream:
/// control/event_stream.hpp).
op_fn find_op(std::string_view op);

}  // namespace certfleet::control
