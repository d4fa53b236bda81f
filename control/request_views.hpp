// Request views: the arguments of control-socket requests, read and validated into the manager's
// request types. Every failure is `ec::invalid_argument` (or `ec::bad_thumbprint`) naming the op
// and the argument, so a script sees what to fix.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "actors/manager.hpp"
#include "control/protocol.hpp"

namespace certfleet::control {

/// Takes the "password" string of `obj` into secret memory and scrubs the field.
caf::expected<secret_bytes> take_password(nlohmann::json& obj, const std::string& op);

/// A `server.add` request from one JSON object (server.add's args or one server.add_bulk entry);
/// `op` names it in errors. The password is taken out of `obj` (scrubbed).
caf::expected<add_server_request> add_request_from(nlohmann::json& obj, const std::string& op);

}  // namespace certfleet::control
