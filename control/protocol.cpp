#include "control/protocol.hpp"

#include <string.h>

#include <algorithm>
#include <limits>

namespace certfleet::control {
namespace {

struct op_access {
  const char* op;
  access_level needs;
};

constexpr op_access op_table[] = {
    {"status", access_level::read_only},        {"server.list", access_level::read_only},
    {"server.show", access_level::read_only},   {"events.subscribe", access_level::read_only},
    {"server.add", access_level::full},         {"server.add_bulk", access_level::full},
    {"server.trust", access_level::full},       {"server.trust_manifest", access_level::full},
    {"server.reject", access_level::full},      {"server.remove", access_level::full},
    {"server.credentials", access_level::full}, {"cert.renew", access_level::full},
    {"cert.status", access_level::read_only},
};

caf::error bad_arg(const request& r, const char* name, const std::string& requirement) {
  return make_error(ec::invalid_argument, r.op + ": argument \"" + name + "\" " + requirement);
}

}  // namespace

const std::vector<std::string>& event_types() {
  static const std::vector<std::string> types = [] {
    std::vector<std::string> names;
    for (auto t : all_event_types) names.emplace_back(to_string(t));
    return names;
  }();
  return types;
}

const char* to_string(access_level a) {
  switch (a) {
    case access_level::refused:
      return "refused";
    case access_level::read_only:
      return "read-only";
    case access_level::full:
      return "full";
  }
  return "refused";
}

access_level decide_access(const peer_identity& peer, uid_t daemon_uid,
                           std::optional<gid_t> read_only_gid) {
  if (peer.uid == 0 || peer.uid == daemon_uid) return access_level::full;
  if (read_only_gid) {
    if (peer.gid == *read_only_gid) return access_level::read_only;
    if (std::find(peer.groups.begin(), peer.groups.end(), *read_only_gid) != peer.groups.end())
      return access_level::read_only;
  }
  return access_level::refused;
}

std::optional<access_level> required_access(std::string_view op) {
  for (const auto& entry : op_table)
    if (op == entry.op) return entry.needs;
  return std::nullopt;
}

caf::error parse_request(const std::string& line, request& out) {
  out = request{};
  nlohmann::json doc, id;
  if (auto err = jsonl::parse_line(line, doc, id)) {
    out.id = id;
    return err;
  }
  return parse_request(doc, id, out);
}

caf::error parse_request(nlohmann::json& doc, const nlohmann::json& id, request& out) {
  out = request{};
  out.id = id;
  auto op = doc.find("op");
  if (op == doc.end() || !op->is_string())
    return make_error(ec::invalid_argument,
                      "request ignored: \"op\" is missing or not a string; ops are listed in "
                      "docs/control-api.md");
  out.op = op->get<std::string>();
  if (!required_access(out.op)) {
    std::string known;
    for (const auto& entry : op_table) known += std::string(known.empty() ? "" : ", ") + entry.op;
    return make_error(ec::invalid_argument, "unknown op \"" + out.op + "\"; known ops: " + known);
  }
  if (auto args = doc.find("args"); args != doc.end() && !args->is_null()) {
    if (!args->is_object())
      return make_error(ec::invalid_argument, out.op + ": \"args\" must be a JSON object");
    out.args = std::move(*args);
  }
  return {};
}

caf::expected<std::string> string_arg(const request& r, const char* name) {
  auto it = r.args.find(name);
  if (it == r.args.end()) return bad_arg(r, name, "is required");
  if (!it->is_string()) return bad_arg(r, name, "must be a string");
  return it->get<std::string>();
}

caf::expected<std::optional<std::string>> optional_string_arg(const request& r, const char* name) {
  auto it = r.args.find(name);
  if (it == r.args.end() || it->is_null()) return std::optional<std::string>{};
  if (!it->is_string()) return bad_arg(r, name, "must be a string");
  return std::optional<std::string>{it->get<std::string>()};
}

caf::expected<uint64_t> uint_arg(const request& r, const char* name, uint64_t dflt, uint64_t max) {
  auto it = r.args.find(name);
  if (it == r.args.end() || it->is_null()) return dflt;
  if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0))
    return bad_arg(r, name, "must be a non-negative integer");
  auto v = it->get<uint64_t>();
  if (v > max) return bad_arg(r, name, "must be at most " + std::to_string(max));
  return v;
}

caf::expected<bool> bool_arg(const request& r, const char* name, bool dflt) {
  auto it = r.args.find(name);
  if (it == r.args.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) return bad_arg(r, name, "must be true or false");
  return it->get<bool>();
}

caf::expected<uint16_t> port_arg(const request& r, const char* name) {
  auto it = r.args.find(name);
  if (it == r.args.end()) return bad_arg(r, name, "is required");
  if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 65535)
    return bad_arg(r, name, "must be an integer between 1 and 65535");
  return static_cast<uint16_t>(it->get<int64_t>());
}

caf::error parse_address(const std::string& text, std::string& host, uint16_t& port) {
  return certfleet::parse_address(text, default_server_port, host, port);
}

}  // namespace certfleet::control
