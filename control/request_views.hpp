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

/// `ec::invalid_argument` naming the op and argument when `value` holds control characters
/// (common/address.hpp, `check_printable`).
caf::error printable_arg(const std::string& op, const char* name, const std::string& value);

/// The "account" argument: a non-empty string without control characters.
caf::expected<std::string> account_arg(const request& r);

/// A `server.add` request from one JSON object (server.add's args or one server.add_bulk entry);
/// `op` names it in errors. The host must be a hostname or an IP literal and comes back normalised
/// (common/address.hpp); name and account must hold no control characters; an
/// `expected_thumbprint` that is empty or blank is refused (absent or null means none). The
/// password is taken out of `obj` (scrubbed).
caf::expected<add_server_request> add_request_from(nlohmann::json& obj, const std::string& op);

}  // namespace certfleet::control
