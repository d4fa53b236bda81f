#include "actors/renewal_schedule.hpp"

#include <algorithm>
#include <ctime>
#include <utility>

#include <nlohmann/json.hpp>

#include "config/settings.hpp"

namespace certfleet {
namespace {

using std::chrono::seconds;

constexpr int64_t seconds_per_day = 86400;
constexpr int record_version = 1;

seconds days(int n) {
  return seconds{int64_t{n} * seconds_per_day};
}

std::string plural(int64_t n, const char* unit) {
  return std::to_string(n) + " " + unit + (n == 1 || n == -1 ? "" : "s");
}

std::string tolerance_note(seconds tolerance) {
  return "(clock skew tolerance " + std::to_string(tolerance.count()) +
         " s, daemon.clock_skew_tolerance_s)";
}

}  // namespace

std::string iso8601_utc(wall_time t) {
  auto secs = wall_clock::to_time_t(std::chrono::floor<seconds>(t));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int64_t days_until(wall_time not_after, wall_time now) {
  auto left = std::chrono::floor<seconds>(not_after - now).count();
  auto whole = left / seconds_per_day;
  if (left % seconds_per_day != 0 && left < 0) --whole;
  return whole;
}

renewal_policy renewal_policy_of(const settings& cfg) {
  renewal_policy p;
  p.warning_days = cfg.identity.renewal_warning_days;
  p.reminder_interval = seconds{cfg.identity.renewal_reminder_interval_s};
  return p;
}

// ---- The durable record. ---------------------------------------------------------------------

std::string encode_renewal_record(const renewal_prompt_record& record) {
  using namespace std::chrono;
  nlohmann::json doc = {
      {"version", record_version},
      {"thumbprint", record.thumbprint},
      {"not_after_s", floor<seconds>(record.not_after.time_since_epoch()).count()},
      {"emitted_at_ms", floor<milliseconds>(record.emitted_at.time_since_epoch()).count()},
  };
  return doc.dump();
}

caf::expected<renewal_prompt_record> decode_renewal_record(std::string_view bytes) {
  auto corrupt = [](const std::string& why) {
    return make_error(ec::corrupt_data, "the stored renewal prompt record " + why +
                                            "; the next due prompt will be emitted again");
  };
  auto doc = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return corrupt("is not a JSON object");
  auto version = doc.find("version");
  if (version == doc.end() || !version->is_number_integer() || *version != record_version)
    return corrupt("has an unknown version");
  auto thumbprint = doc.find("thumbprint");
  auto not_after = doc.find("not_after_s");
  auto emitted_at = doc.find("emitted_at_ms");
  if (thumbprint == doc.end() || !thumbprint->is_string() || not_after == doc.end() ||
      !not_after->is_number_integer() || emitted_at == doc.end() ||
      !emitted_at->is_number_integer())
    return corrupt("lacks a field or has one of the wrong type");
  // Beyond what a wall_time can hold (about 292 years either side of 1970 in nanoseconds).
  constexpr auto limit_s =
      std::chrono::duration_cast<seconds>(wall_clock::duration::max()).count() - 1;
  auto in_range = [&](int64_t s) { return s > -limit_s && s < limit_s; };
  if (!in_range(not_after->get<int64_t>()) || !in_range(emitted_at->get<int64_t>() / 1000))
    return corrupt("holds a time out of range");
  renewal_prompt_record record;
  record.thumbprint = thumbprint->get<std::string>();
  record.not_after = wall_time{
      std::chrono::duration_cast<wall_clock::duration>(seconds{not_after->get<int64_t>()})};
  record.emitted_at = wall_time{std::chrono::duration_cast<wall_clock::duration>(
      std::chrono::milliseconds{emitted_at->get<int64_t>()})};
  return record;
}

// ---- The manager certificate's schedule. -------------------------------------------------------

std::string describe(const renewal_prompt& p) {
  std::string text = "the manager certificate " + p.thumbprint;
  if (p.expired)
    text += " expired at " + p.not_after + "; renew it now";
  else
    text += " expires at " + p.not_after + " (" + plural(p.days_left, "day") + " left); renew it";
  return text + " with certfleet cert renew";
}

void to_json(nlohmann::json& out, const renewal_prompt& p) {
  out = {{"days_left", p.days_left},
         {"thumbprint", p.thumbprint},
         {"not_after", p.not_after},
         {"expired", p.expired},
         {"reminder", p.reminder}};
}

void to_json(nlohmann::json& out, const renewal_status& s) {
  out = {{"days_left", s.days_left},   {"renewal_due", s.renewal_due}, {"expired", s.expired},
         {"thumbprint", s.thumbprint}, {"not_after", s.not_after},     {"due_at", s.due_at}};
}

renewal_schedule::renewal_schedule(wall_time not_after, std::string thumbprint,
                                   renewal_policy policy, std::optional<renewal_prompt_record> last)
    : not_after_(not_after), thumbprint_(std::move(thumbprint)), policy_(policy) {
  if (last && is_about_this_certificate(*last)) last_ = std::move(last);
}

bool renewal_schedule::is_about_this_certificate(const renewal_prompt_record& r) const {
  // The record keeps notAfter to the second, as X.509 does.
  return r.thumbprint == thumbprint_ &&
         std::chrono::floor<seconds>(r.not_after) == std::chrono::floor<seconds>(not_after_);
}

wall_time renewal_schedule::due_at() const {
  return not_after_ - days(policy_.warning_days);
}

wall_time renewal_schedule::next_reminder_at(wall_time now) const {
  return std::min(last_->emitted_at, now) + policy_.reminder_interval;
}

std::optional<renewal_prompt> renewal_schedule::on_tick(wall_time now) {
  if (now < due_at()) return std::nullopt;
  bool reminder = last_.has_value();
  if (last_) {
    if (last_->emitted_at > now) last_->emitted_at = now;  // the wall clock went back
    if (now < next_reminder_at(now)) return std::nullopt;
  }
  last_ = renewal_prompt_record{now, thumbprint_, not_after_};
  renewal_prompt p;
  p.days_left = days_until(not_after_, now);
  p.thumbprint = thumbprint_;
  p.not_after = iso8601_utc(not_after_);
  p.expired = now > not_after_;
  p.reminder = reminder;
  return p;
}

wall_time renewal_schedule::next_wakeup(wall_time now) const {
  wall_time at;
  if (now < due_at())
    at = due_at();
  else if (!last_)
    at = now;
  else
    at = std::max(now, next_reminder_at(now));
  return std::min(at, now + policy_.max_sleep);
}

renewal_status renewal_schedule::status(wall_time now) const {
  renewal_status s;
  s.days_left = days_until(not_after_, now);
  s.renewal_due = now >= due_at();
  s.expired = now > not_after_;
  s.thumbprint = thumbprint_;
  s.not_after = iso8601_utc(not_after_);
  s.due_at = iso8601_utc(due_at());
  return s;
}

void renewal_schedule::set_certificate(wall_time not_after, std::string thumbprint) {
  if (thumbprint == thumbprint_ && not_after == not_after_) return;
  not_after_ = not_after;
  thumbprint_ = std::move(thumbprint);
  last_.reset();
}

// ---- Pinned server certificates. ---------------------------------------------------------------

const char* to_string(server_certificate_state s) {
  switch (s) {
    case server_certificate_state::ok:
      return "ok";
    case server_certificate_state::expiring:
      return "expiring";
    case server_certificate_state::expired:
      return "expired";
    case server_certificate_state::not_yet_valid:
      return "not_yet_valid";
  }
  return "unknown";
}

server_certificate_check classify_server_certificate(wall_time not_before, wall_time not_after,
                                                     wall_time now, seconds skew_tolerance,
                                                     int warning_days) {
  server_certificate_check check;
  check.days_left = days_until(not_after, now);
  if (now < not_before - skew_tolerance)
    check.state = server_certificate_state::not_yet_valid;
  else if (now > not_after + skew_tolerance)
    check.state = server_certificate_state::expired;
  else if (now >= not_after - days(warning_days))
    check.state = server_certificate_state::expiring;
  else
    check.state = server_certificate_state::ok;
  return check;
}

std::string refusal_reason(const server_certificate_check& check, std::string_view thumbprint,
                           wall_time not_before, wall_time not_after, seconds skew_tolerance) {
  std::string named = "server certificate " + std::string{thumbprint};
  switch (check.state) {
    case server_certificate_state::expired:
      return named + " expired at " + iso8601_utc(not_after) + " " +
             tolerance_note(skew_tolerance) +
             "; the server needs a new certificate, whose thumbprint is then validated again, "
             "unless this machine's clock is wrong";
    case server_certificate_state::not_yet_valid:
      return named + " is not valid before " + iso8601_utc(not_before) + " " +
             tolerance_note(skew_tolerance) + "; check the clocks of both machines";
    case server_certificate_state::ok:
    case server_certificate_state::expiring:
      break;
  }
  return {};
}

server_expiry_watch::observation server_expiry_watch::observe(const std::string& thumbprint,
                                                              wall_time not_before,
                                                              wall_time not_after, wall_time now,
                                                              seconds skew_tolerance,
                                                              int warning_days) {
  observation out;
  out.check = classify_server_certificate(not_before, not_after, now, skew_tolerance, warning_days);
  if (out.check.state == server_certificate_state::expiring)
    out.emit_expiring = warned_.insert(thumbprint).second;
  return out;
}

}  // namespace certfleet
