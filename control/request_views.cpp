#include "control/request_views.hpp"

namespace certfleet::control {

using json = nlohmann::json;

/// Takes a password out of a JSON field into secret memory and scrubs the field.
caf::expected<secret_bytes> take_password(json& obj, const std::string& op) {
  auto it = obj.find("password");
  if (it == obj.end() || !it->is_string())
    return make_error(ec::invalid_argument, op + ": argument \"password\" is required and must "
                                                 "be a string");
  auto& text = it->get_ref<std::string&>();
  auto secret = to_secret(text);
  scrub(text);
  return secret;
}

/// Builds an add request from one JSON object (server.add's args or one server.add_bulk entry).
caf::expected<add_server_request> add_request_from(json& obj, const std::string& op) {
  request view;  // lets the argument helpers name the op
  view.op = op;
  view.args = json::object();
  for (const char* key : {"host", "port", "name", "account", "expected_thumbprint"})
    if (auto it = obj.find(key); it != obj.end()) view.args[key] = *it;
  add_server_request req;
  auto host = string_arg(view, "host");
  if (!host) return host.error();
  if (host->empty())
    return make_error(ec::invalid_argument, op + ": argument \"host\" must not be empty");
  req.host = *host;
  if (view.args.contains("port")) {
    auto port = port_arg(view, "port");
    if (!port) return port.error();
    req.port = *port;
  } else {
    req.port = default_server_port;
  }
  auto name = optional_string_arg(view, "name");
  if (!name) return name.error();
  req.name = name->value_or("");
  auto account = string_arg(view, "account");
  if (!account) return account.error();
  if (account->empty())
    return make_error(ec::invalid_argument, op + ": argument \"account\" must not be empty");
  req.account = *account;
  auto expected = optional_string_arg(view, "expected_thumbprint");
  if (!expected) return expected.error();
  if (*expected && !(*expected)->empty()) {
    auto t = thumbprint::parse(**expected);
    if (!t) return t.error();
    req.expected = *t;
  }
  auto password = take_password(obj, op);
  if (!password) return password.error();
  req.password = std::move(*password);
  return req;
}

}  // namespace certfleet::control
