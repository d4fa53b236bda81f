#include "actors/server_certificate.hpp"

namespace certfleet {
namespace {

using std::chrono::milliseconds;

int64_t unix_ms(wall_time t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

wall_time from_unix_ms(int64_t ms) {
  return wall_time{std::chrono::duration_cast<wall_clock::duration>(milliseconds{ms})};
}

}  // namespace

bool record_validity(server_record& rec, const tls_session& tls) {
  const auto& v = tls.peer_validity();
  if (!v) return false;
  auto not_before = unix_ms(v->not_before);
  auto not_after = unix_ms(v->not_after);
  if (rec.certificate_not_before_ms == not_before && rec.certificate_not_after_ms == not_after)
    return false;
  rec.certificate_not_before_ms = not_before;
  rec.certificate_not_after_ms = not_after;
  return true;
}

std::optional<watched_certificate> watch_of(const server_record& rec) {
  if (rec.state != server_state::trusted || !rec.pinned || !rec.presented ||
      *rec.pinned != *rec.presented || rec.certificate_not_after_ms == 0)
    return std::nullopt;
  watched_certificate w;
  w.server_id = rec.id;
  w.thumbprint = rec.pinned->to_string();
  w.not_before = from_unix_ms(rec.certificate_not_before_ms);
  w.not_after = from_unix_ms(rec.certificate_not_after_ms);
  w.warned = rec.expiry_warned && *rec.expiry_warned == *rec.pinned;
  return w;
}

std::optional<std::string> validity_refusal(const tls_session& tls, const settings& cfg,
                                            int64_t now_ms) {
  const auto& v = tls.peer_validity();
  auto presented = tls.peer_thumbprint();
  if (!v || !presented) return std::nullopt;
  std::chrono::seconds tolerance{cfg.daemon.clock_skew_tolerance_s};
  auto check = classify_server_certificate(v->not_before, v->not_after, from_unix_ms(now_ms),
                                           tolerance, cfg.identity.renewal_warning_days);
  if (check.usable()) return std::nullopt;
  return refusal_reason(check, presented->to_string(), v->not_before, v->not_after, tolerance);
}

}  // namespace certfleet
