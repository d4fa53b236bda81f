#include "control/request_views.hpp"

#include "common/address.hpp"

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

caf::error printable_arg(const std::string& op, const char* name, const std::string& value) {
  if (auto err = check_printable(op + ": argument \"" + name + "\"", value)) return err;
  return {};
}

caf::expected<std::string> account_arg(const request& r) {
  auto account = string_arg(r, "account");
  if (!account) return account.error();
  if (account->empty())
    return make_error(ec::invalid_argument, r.op + ": argument \"account\" must not be empty");
  if (auto err = printable_arg(r.op, "account", *account)) return err;
  return account;
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
  if (auto err = validate_host(*host))
    return make_error(ec::invalid_argument, op + ": argument \"host\": " + describe(err));
  // Stored in normal form, so that the manager's duplicate check sees one spelling per address.
  req.host = normalise_host(*host);
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
  if (auto err = printable_arg(op, "name", req.name)) return err;
  auto account = account_arg(view);
  if (!account) return account.error();
  req.account = std::move(*account);
  auto expected = optional_string_arg(view, "expected_thumbprint");
  if (!expected) return expected.error();
  if (*expected) {
    // A script passing an empty variable must not silently drop the pin it meant to set.
    if ((*expected)->find_first_not_of(" \t\r\n") == std::string::npos)
      return make_error(ec::invalid_argument,
                        op + ": argument \"expected_thumbprint\" is empty; give the 64 hex "
                             "digits verified out of band, or leave the argument out");
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
