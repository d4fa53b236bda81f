#include "actors/server_expiry.hpp"

#include <nlohmann/json.hpp>

namespace certfleet {

void to_json(nlohmann::json& out, const expiry_warning& w) {
  out = nlohmann::json{{"thumbprint", w.thumbprint},
                       {"not_after", w.not_after},
                       {"days_left", w.days_left},
                       {"expired", w.expired}};
}

std::string describe(const expiry_warning& w) {
  return "server " + w.server_id + ": its certificate " + w.thumbprint +
         (w.expired ? " expired at " : " expires at ") + w.not_after + " (" +
         std::to_string(w.days_left) +
         " days left); give the server a new certificate, then validate its thumbprint with "
         "'certfleet server trust " +
         w.server_id + " --thumbprint NEW'";
}

void server_expiry_watchlist::queue(entry& e, wall_time at) {
  pending_.emplace(at, e.cert.server_id);
  e.queued_at = at;
}

void server_expiry_watchlist::watch(watched_certificate c) {
  unwatch(c.server_id);
  auto id = c.server_id;
  auto& e = by_server_.emplace(std::move(id), entry{std::move(c), std::nullopt}).first->second;
  if (!e.cert.warned) queue(e, e.cert.not_after - std::chrono::hours{24} * warning_days_);
}

void server_expiry_watchlist::unwatch(const std::string& server_id) {
  auto it = by_server_.find(server_id);
  if (it == by_server_.end()) return;
  if (it->second.queued_at) pending_.erase({*it->second.queued_at, server_id});
  by_server_.erase(it);
}

std::vector<expiry_warning> server_expiry_watchlist::due(wall_time now) {
  std::vector<expiry_warning> out;
  std::vector<std::pair<entry*, wall_time>> later;
  while (!pending_.empty() && pending_.begin()->first <= now) {
    auto id = pending_.begin()->second;
    pending_.erase(pending_.begin());
    auto it = by_server_.find(id);
    if (it == by_server_.end()) continue;
    auto& e = it->second;
    e.queued_at.reset();
    auto& c = e.cert;
    auto check =
        classify_server_certificate(c.not_before, c.not_after, now, tolerance_, warning_days_);
    switch (check.state) {
      case server_certificate_state::expiring:
        c.warned = true;
        out.push_back({c.server_id, c.thumbprint, check.days_left, iso8601_utc(c.not_after),
                       now > c.not_after});
        break;
      case server_certificate_state::not_yet_valid:
        // A window that opens before the certificate is valid at all: look again once it is.
        later.emplace_back(&e, c.not_before - tolerance_);
        break;
      case server_certificate_state::ok:
        // Cannot happen for a window that has opened; look again when it does.
        later.emplace_back(&e, c.not_after - std::chrono::hours{24} * warning_days_);
        break;
      case server_certificate_state::expired:
        break;
    }
  }
  for (auto& [e, at] : later) queue(*e, at <= now ? now + std::chrono::seconds{1} : at);
  return out;
}

}  // namespace certfleet
