// When the manager certificate's renewal prompt is due, and whether a pinned server certificate may
// be used: the decisions of the daemon's timer, without the timer.
//
// Everything here is pure: the wall-clock time is always an argument, nothing sleeps, nothing
// spawns, nothing touches storage. The caller (the timer actor) owns the clock, the events, the log
// and the durable record; docs/lifecycle.md states the rules these types implement.
//
// Thread-safety: `renewal_schedule` and `server_expiry_watch` are plain values owned by one actor;
// the free functions are pure and safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/error.hpp"

namespace certfleet {

struct settings;

using wall_clock = std::chrono::system_clock;
using wall_time = wall_clock::time_point;

/// `t` as ISO 8601 UTC to the second ("2027-11-24T00:00:00Z"), the form certificate summaries use.
std::string iso8601_utc(wall_time t);

/// Whole days from `now` to `not_after`, rounded towards minus infinity: 29 with 29 days and an
/// hour left, 0 in the last day, -1 in the first day after `not_after`.
int64_t days_until(wall_time not_after, wall_time now);

// ---- The manager certificate's renewal prompt.
// ----------------------------------------------------

/// The settings the schedule follows (identity.renewal_warning_days,
/// identity.renewal_reminder_interval_s).
struct renewal_policy {
  /// The prompt is due from notAfter minus this many days on (1..365).
  int warning_days = 30;
  /// A due prompt repeats this often until the certificate is renewed (at least 1 s).
  std::chrono::seconds reminder_interval{86400};
  /// `next_wakeup` never asks to sleep longer than this, so that a wall clock set forward while
  /// the timer sleeps (timers run on the monotonic clock) is noticed within this delay.
  std::chrono::seconds max_sleep{60};
};

/// The policy `cfg` configures (identity.renewal_warning_days and
/// identity.renewal_reminder_interval_s; max_sleep keeps its default).
renewal_policy renewal_policy_of(const settings& cfg);

/// The last prompt emitted, kept in durable state so that a restart neither repeats it early nor
/// loses it. A record about another certificate (thumbprint or notAfter differs) is ignored.
struct renewal_prompt_record {
  /// When the prompt was emitted (wall clock).
  wall_time emitted_at;
  /// The certificate it was about.
  std::string thumbprint;
  wall_time not_after;

  friend bool operator==(const renewal_prompt_record& a, const renewal_prompt_record& b) {
    return a.emitted_at == b.emitted_at && a.thumbprint == b.thumbprint &&
           a.not_after == b.not_after;
  }
};

/// The record as a small JSON document (UTF-8 bytes), for the meta column family:
/// {"version":1,"thumbprint":"...","not_after_s":<Unix seconds>,"emitted_at_ms":<Unix ms>}.
/// notAfter is kept to the second (X.509 has no finer time), emitted_at to the millisecond.
std::string encode_renewal_record(const renewal_prompt_record& record);

/// Reads what `encode_renewal_record` wrote. Fails with `ec::corrupt_data` (not JSON, another
/// version, a missing or mistyped field); the caller then starts as if no prompt had been emitted,
/// which at worst repeats one prompt.
caf::expected<renewal_prompt_record> decode_renewal_record(std::string_view bytes);

/// A prompt that is due now: the fields of the `certificate_renewal_due` event.
struct renewal_prompt {
  /// `days_until(not_after, now)`; negative once the certificate has expired.
  int64_t days_left = 0;
  std::string thumbprint;
  /// notAfter in ISO 8601 UTC.
  std::string not_after;
  /// The certificate is past its notAfter (it still prompts: renewal is all the more due).
  bool expired = false;
  /// False for the first prompt about this certificate, true for every repeat.
  bool reminder = false;
};

/// The log warning for `p`: what expires when, and the command that renews it.
std::string describe(const renewal_prompt& p);

/// The `certificate_renewal_due` event's details: {"days_left", "thumbprint", "not_after",
/// "expired", "reminder"}.
void to_json(nlohmann::json& out, const renewal_prompt& p);

/// What `certfleet status` and `cert show` print about the manager certificate.
struct renewal_status {
  int64_t days_left = 0;
  /// The warning window has been entered (now >= due_at), expired or not.
  bool renewal_due = false;
  bool expired = false;
  std::string thumbprint;
  /// ISO 8601 UTC.
  std::string not_after;
  /// notAfter minus the warning days, ISO 8601 UTC.
  std::string due_at;
};

/// {"days_left", "renewal_due", "expired", "thumbprint", "not_after", "due_at"}, for `--json`.
void to_json(nlohmann::json& out, const renewal_status& s);

// clang-format off
// One schedule per manager certificate:
//
//   waiting --now >= due_at--> prompt (record = now) --now >= record + interval--> prompt ...
//      ^                                                                              |
//      +------------------- set_certificate(another notAfter or thumbprint) ----------+
//
// A wall clock set back below the record makes the record "now": the next reminder comes one
// interval after the jump, never twice for the same instant and never a burst after a jump forward.
// clang-format on
class renewal_schedule {
 public:
  /// The schedule of the certificate (`not_after`, `thumbprint`). `last` is the record loaded from
  /// durable state (nullopt when there is none); it counts only when it is about this certificate.
  renewal_schedule(wall_time not_after, std::string thumbprint, renewal_policy policy,
                   std::optional<renewal_prompt_record> last = std::nullopt);

  /// The prompt due at `now`, if any. When one is returned, `last_prompt()` has become the record
  /// to store: in the same write batch as the event, or else after the event, so that a crash
  /// between the two repeats a prompt rather than losing it. At most one prompt per call, however
  /// far the clock jumped.
  std::optional<renewal_prompt> on_tick(wall_time now);

  /// When to call `on_tick` next: the due instant, the next reminder, or `now` when a prompt is
  /// due already; never later than `now + policy.max_sleep`, never earlier than `now`.
  wall_time next_wakeup(wall_time now) const;

  /// Days left and whether renewal is due, for status output. Does not change the schedule.
  renewal_status status(wall_time now) const;

  /// The manager certificate changed (renewed, or regenerated): a different notAfter or thumbprint
  /// starts a fresh schedule with no prompt emitted; the same certificate changes nothing.
  void set_certificate(wall_time not_after, std::string thumbprint);

  /// notAfter minus the warning days: the first instant at which a prompt is due.
  wall_time due_at() const;

  /// The last prompt about the current certificate (nullopt before the first), to store durably.
  const std::optional<renewal_prompt_record>& last_prompt() const { return last_; }

  const renewal_policy& policy() const { return policy_; }

 private:
  bool is_about_this_certificate(const renewal_prompt_record& r) const;
  // The instant from which the next reminder is due, with a record in the future (the wall clock
  // went back) read as "now".
  wall_time next_reminder_at(wall_time now) const;

  wall_time not_after_;
  std::string thumbprint_;
  renewal_policy policy_;
  std::optional<renewal_prompt_record> last_;
};

// ---- Pinned server certificates. ----------------------------------------------------------------

/// What a server certificate's validity period means at a given time.
enum class server_certificate_state {
  /// Valid and outside the warning window.
  ok,
  /// Valid (allowing for clock skew) and within the warning window: raise
  /// `server_certificate_expiring` once per certificate.
  expiring,
  /// notAfter + tolerance has passed: refuse the server with this reason.
  expired,
  /// notBefore - tolerance is still to come: refuse the server with this reason.
  not_yet_valid,
};

/// "ok", "expiring", "expired", "not_yet_valid".
const char* to_string(server_certificate_state s);

/// The verdict on one server certificate.
struct server_certificate_check {
  server_certificate_state state = server_certificate_state::ok;
  /// `days_until(not_after, now)`.
  int64_t days_left = 0;
  /// Whether the connection may go on (ok or expiring).
  bool usable() const {
    return state == server_certificate_state::ok || state == server_certificate_state::expiring;
  }
};

/// Classifies a server certificate valid from `not_before` to `not_after` (both inclusive) at
/// `now`. Clocks of manager and server may differ by up to `skew_tolerance`, so the certificate is
/// accepted from not_before - tolerance to not_after + tolerance, both inclusive; it is expiring
/// from not_after - warning_days on (the window itself is not widened by the tolerance).
server_certificate_check classify_server_certificate(wall_time not_before, wall_time not_after,
                                                     wall_time now,
                                                     std::chrono::seconds skew_tolerance,
                                                     int warning_days);

/// The user-facing reason a server certificate is refused, naming the thumbprint, the limit and
/// the tolerance ("server certificate ... expired at ...; ..."); empty for a usable certificate.
std::string refusal_reason(const server_certificate_check& check, std::string_view thumbprint,
                           wall_time not_before, wall_time not_after,
                           std::chrono::seconds skew_tolerance);

/// Which server certificates have had their `server_certificate_expiring` event, so that it is
/// raised once per certificate (by thumbprint). Restore it from durable state with the thumbprints
/// already warned about; forget a thumbprint when its server is removed or repinned.
class server_expiry_watch {
 public:
  explicit server_expiry_watch(std::set<std::string> warned = {}) : warned_(std::move(warned)) {}

  /// Classifies as `classify_server_certificate` does. `emit_expiring` is true exactly once per
  /// thumbprint: on the first observation in the expiring state (the thumbprint is then
  /// remembered; store `warned()` durably if it must survive a restart).
  struct observation {
    server_certificate_check check;
    bool emit_expiring = false;
  };
  observation observe(const std::string& thumbprint, wall_time not_before, wall_time not_after,
                      wall_time now, std::chrono::seconds skew_tolerance, int warning_days);

  void forget(const std::string& thumbprint) { warned_.erase(thumbprint); }
  const std::set<std::string>& warned() const { return warned_; }

 private:
  std::set<std::string> warned_;
};

}  // namespace certfleet
