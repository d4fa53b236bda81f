#include "control/ops.hpp"

#include "actors/trust_manifest.hpp"
#include "control/manifest.hpp"
#include "control/replies.hpp"
#include "control/request_views.hpp"

namespace certfleet::control {
namespace {

using json = nlohmann::json;

caf::expected<json> status(op_context& ctx, request&) {
  return status_json(ctx.m.status());
}

caf::expected<json> list(op_context& ctx, request&) {
  auto views = ctx.m.list();
  if (!views) return views.error();
  json servers = json::array();
  for (const auto& v : *views) servers.push_back(server_json(v, false));
  return json{{"servers", std::move(servers)}};
}

caf::expected<json> show(op_context& ctx, request& req) {
  auto id = string_arg(req, "id");
  if (!id) return id.error();
  auto v = ctx.m.show(*id);
  if (!v) return v.error();
  return server_json(*v, true);
}

caf::expected<json> add(op_context& ctx, request& req) {
  auto add = add_request_from(req.args, req.op);
  if (!add) return add.error();
  auto v = ctx.m.add_server(std::move(*add));
  if (!v) return v.error();
  return server_json(*v, false);
}

caf::expected<json> add_bulk(op_context& ctx, request& req) {
  auto it = req.args.find("servers");
  if (it == req.args.end() || !it->is_array())
    return make_error(ec::invalid_argument,
                      "server.add_bulk: argument \"servers\" must be an array of objects");
  // Entries that parse go to the manager as one batch (one credential flush, one fsync); the
  // others keep their own error. Results stay in entry order.
  std::vector<caf::expected<server_view>> outcome;
  std::vector<add_server_request> batch;
  std::vector<size_t> batch_index;  // entry index of each batch element
  for (size_t i = 0; i < it->size(); ++i) {
    auto& entry = (*it)[i];
    outcome.emplace_back(make_error(
        ec::invalid_argument, "server.add_bulk: entry " + std::to_string(i) + " is not an object"));
    if (!entry.is_object()) continue;
    auto add = add_request_from(entry, "server.add_bulk entry " + std::to_string(i));
    if (!add) {
      outcome.back() = add.error();
      continue;
    }
    outcome.back() = make_error(ec::timeout, "server.add_bulk entry " + std::to_string(i) +
                                                 ": the manager gave no answer for it; check "
                                                 "'certfleet server list' and retry");
    batch.push_back(std::move(*add));
    batch_index.push_back(i);
  }
  auto added_views = ctx.m.add_servers(std::move(batch));
  for (size_t k = 0; k < added_views.size() && k < batch_index.size(); ++k)
    outcome[batch_index[k]] = std::move(added_views[k]);
  json results = json::array();
  size_t added = 0;
  for (size_t i = 0; i < outcome.size(); ++i) {
    json result{{"index", i}};
    auto& v = outcome[i];
    if (v) {
      ++added;
      result["ok"] = true;
      result["server"] = server_json(*v, false);
    } else {
      result["ok"] = false;
      result["error"] = error_json(v.error());
    }
    results.push_back(std::move(result));
  }
  return json{{"results", std::move(results)}, {"added", added}, {"failed", it->size() - added}};
}

caf::expected<json> trust(op_context& ctx, request& req) {
  auto id = string_arg(req, "id");
  if (!id) return id.error();
  auto text = string_arg(req, "thumbprint");
  if (!text) return text.error();
  auto t = thumbprint::parse(*text);
  if (!t) return t.error();
  auto v = ctx.m.trust(*id, *t, ctx.validated_by());
  if (!v) return v.error();
  return server_json(*v, false);
}

/// Trusts every server whose address and presented thumbprint match a manifest entry (the rule is
/// actors/trust_manifest.hpp's; this is its wire form).
caf::expected<json> trust_manifest(op_context& ctx, request& req) {
  auto it = req.args.find("entries");
  if (it == req.args.end() || !it->is_array())
    return make_error(ec::invalid_argument,
                      "server.trust_manifest: argument \"entries\" must be an array of "
                      "{address, port, thumbprint} objects");
  auto parsed =
      parse_manifest(*it, "server.trust_manifest: \"entries\"", thumbprint_rule::required);
  if (!parsed) return parsed.error();
  std::vector<trust_manifest_entry> entries;
  entries.reserve(parsed->size());
  for (const auto& e : *parsed) entries.push_back({e.host, e.port, *e.sha256});
  auto report = apply_trust_manifest(ctx.m, entries, ctx.validated_by());
  if (!report) return report.error();
  json results = json::array();
  for (const auto& r : report->results) {
    json result{{"id", r.server_id}, {"address", r.address}, {"outcome", to_string(r.outcome)}};
    if (!r.message.empty()) result["message"] = r.message;
    if (r.outcome == manifest_outcome::error) result["error"] = error_json(r.error);
    results.push_back(std::move(result));
  }
  return json{{"results", std::move(results)},
              {"trusted", report->trusted},
              {"already_trusted", report->already_trusted},
              {"skipped", report->skipped},
              {"failed", report->failed},
              {"unmatched_entries", report->unmatched}};
}

caf::expected<json> reject(op_context& ctx, request& req) {
  auto id = string_arg(req, "id");
  if (!id) return id.error();
  auto v = ctx.m.reject(*id);
  if (!v) return v.error();
  return server_json(*v, false);
}

caf::expected<json> remove(op_context& ctx, request& req) {
  auto id = string_arg(req, "id");
  if (!id) return id.error();
  if (auto err = ctx.m.remove(*id)) return err;
  return json{{"id", *id}, {"removed", true}};
}

caf::expected<json> credentials(op_context& ctx, request& req) {
  auto id = string_arg(req, "id");
  if (!id) return id.error();
  auto account = account_arg(req);
  if (!account) return account.error();
  auto password = take_password(req.args, req.op);
  if (!password) return password.error();
  auto v = ctx.m.set_credentials(*id, *account, std::move(*password));
  if (!v) return v.error();
  return server_json(*v, false);
}

json rotation_json(const rotation_view& v) {
  json pending = json::array();
  for (const auto& p : v.pending) {
    json one{{"id", p.id}, {"since_ms", v.started_ms}};
    if (!p.last_error.empty()) one["last_error"] = p.last_error;
    pending.push_back(std::move(one));
  }
  return json{{"phase", v.phase},
              {"old_thumbprint", v.old_thumbprint},
              {"new_thumbprint", v.new_thumbprint},
              {"old_not_after", v.old_not_after},
              {"new_not_after", v.new_not_after},
              {"started_ms", v.started_ms},
              {"completed_ms", v.completed_ms},
              {"servers", v.servers},
              {"moved", v.moved},
              {"pending", std::move(pending)},
              {"reregistration_required", v.missed},
              {"drops_owed", v.drops_owed}};
}

caf::expected<json> cert_renew(op_context& ctx, request& req) {
  std::string name;
  if (auto it = req.args.find("friendly_name"); it != req.args.end()) {
    if (!it->is_string())
      return make_error(ec::invalid_argument,
                        "cert.renew: argument \"friendly_name\" must be a string");
    name = it->get<std::string>();
  }
  auto v = ctx.m.renew_certificate(std::move(name));
  if (!v) return v.error();
  return rotation_json(*v);
}

caf::expected<json> cert_status(op_context& ctx, request&) {
  auto v = ctx.m.rotation_status();
  if (!v) return v.error();
  return rotation_json(*v);
}

struct op_entry {
  const char* name;
  op_fn handler;
};

// The access each op needs is the codec's table (control/protocol.cpp, `required_access`), which
// the client shares; this one says what each op does. `events.subscribe` is a stream, not a reply
// (control/event_stream.hpp).
constexpr op_entry op_handlers[] = {
    {"status", status},
    {"server.list", list},
    {"server.show", show},
    {"server.add", add},
    {"server.add_bulk", add_bulk},
    {"server.trust", trust},
    {"server.trust_manifest", trust_manifest},
    {"server.reject", reject},
    {"server.remove", remove},
    {"server.credentials", credentials},
    {"cert.renew", cert_renew},
    {"cert.status", cert_status},
};

}  // namespace

std::string op_context::validated_by() const {
  return "admin (uid " + std::to_string(peer.uid) + ")";
}

op_fn find_op(std::string_view op) {
  for (const auto& entry : op_handlers)
    if (op == entry.name) return entry.handler;
  return nullptr;
}

}  // namespace certfleet::control
