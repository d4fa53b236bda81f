#include "actors/rotation_record.hpp"

#include <nlohmann/json.hpp>

namespace certfleet {

const char* to_string(rotation_phase p) {
  switch (p) {
    case rotation_phase::rolling_out:
      return "rolling_out";
    case rotation_phase::retiring:
      return "retiring";
    case rotation_phase::completed:
      return "completed";
    case rotation_phase::abandoned:
      return "abandoned";
  }
  return "unknown";
}

size_t rotation_record::moved_count() const {
  size_t n = 0;
  for (const auto& [id, moved] : servers) n += moved != 0;
  return n;
}

std::vector<std::string> rotation_record::pending() const {
  std::vector<std::string> out;
  for (const auto& [id, moved] : servers)
    if (moved == 0) out.push_back(id);
  return out;
}

bool rotation_record::is_pending(const std::string& id) const {
  auto it = servers.find(id);
  return it != servers.end() && it->second == 0;
}

bool rotation_record::mark_moved(const std::string& id, int64_t now_ms) {
  auto it = servers.find(id);
  if (it == servers.end() || it->second != 0) return false;
  it->second = std::max<int64_t>(now_ms, 1);
  return true;
}

bool rotation_record::forget(const std::string& id) {
  drop_owed.erase(id);
  return servers.erase(id) > 0;
}

bool rotation_record::ready_to_retire(int64_t now_ms) const {
  return phase == rotation_phase::rolling_out &&
         (moved_count() == servers.size() || old_expired(now_ms));
}

namespace {
constexpr int record_version = 1;
}

std::string encode_rotation_record(const rotation_record& r) {
  nlohmann::json servers = nlohmann::json::object();
  for (const auto& [id, moved] : r.servers) servers[id] = moved;
  nlohmann::json j{{"version", record_version},
                   {"phase", to_string(r.phase)},
                   {"old_thumbprint", r.old_thumbprint},
                   {"new_thumbprint", r.new_thumbprint},
                   {"old_not_after_s", r.old_not_after_s},
                   {"started_ms", r.started_ms},
                   {"completed_ms", r.completed_ms},
                   {"servers", servers},
                   {"drop_owed", r.drop_owed},
                   {"missed", r.missed}};
  return j.dump();
}

caf::expected<rotation_record> decode_rotation_record(const std::string& text) {
  auto bad = [](const std::string& why) {
    return make_error(ec::corrupt_data, "the stored manager certificate rotation is unreadable: " +
                                            why + "; see docs/lifecycle.md");
  };
  try {
    auto j = nlohmann::json::parse(text);
    if (j.at("version").get<int>() != record_version)
      return bad("unknown version " + j.at("version").dump());
    rotation_record r;
    auto phase = j.at("phase").get<std::string>();
    bool known = false;
    for (auto p : {rotation_phase::rolling_out, rotation_phase::retiring, rotation_phase::completed,
                   rotation_phase::abandoned})
      if (phase == to_string(p)) {
        r.phase = p;
        known = true;
      }
    if (!known) return bad("unknown phase '" + phase + "'");
    r.old_thumbprint = j.at("old_thumbprint").get<std::string>();
    r.new_thumbprint = j.at("new_thumbprint").get<std::string>();
    r.old_not_after_s = j.at("old_not_after_s").get<int64_t>();
    r.started_ms = j.at("started_ms").get<int64_t>();
    r.completed_ms = j.at("completed_ms").get<int64_t>();
    for (const auto& [id, moved] : j.at("servers").items()) r.servers[id] = moved.get<int64_t>();
    r.drop_owed = j.at("drop_owed").get<std::set<std::string>>();
    r.missed = j.at("missed").get<std::vector<std::string>>();
    return r;
  } catch (const std::exception& e) {
    return bad(e.what());
  }
}

}  // namespace certfleet
