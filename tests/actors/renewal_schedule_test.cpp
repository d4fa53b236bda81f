#include "actors/renewal_schedule.hpp"

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "config/settings.hpp"

namespace certfleet {
namespace {

using namespace std::chrono_literals;
using std::chrono::hours;
using std::chrono::seconds;

constexpr hours day{24};

// 2027-06-01T00:00:00Z: the manager certificate's notAfter in most tests.
const wall_time not_after = wall_clock::from_time_t(1811808000);
const std::string thumb = "SHA256:manager-one";
const std::string other_thumb = "SHA256:manager-two";

// 30 days of warning, a reminder every day; next_wakeup capped at a minute.
renewal_policy policy() {
  renewal_policy p;
  p.warning_days = 30;
  p.reminder_interval = 86400s;
  p.max_sleep = 60s;
  return p;
}

const wall_time due = not_after - 30 * day;

// ---- The due instant. ------------------------------------------------------------------------

TEST(renewal_schedule, prompt_is_due_exactly_warning_days_before_not_after) {
  renewal_schedule s{not_after, thumb, policy()};
  EXPECT_EQ(s.due_at(), due);
  EXPECT_EQ(iso8601_utc(s.due_at()), "2027-05-02T00:00:00Z");
  EXPECT_FALSE(s.on_tick(due - 1s));
  auto p = s.on_tick(due);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->days_left, 30);
  EXPECT_EQ(p->thumbprint, thumb);
  EXPECT_EQ(p->not_after, "2027-06-01T00:00:00Z");
  EXPECT_FALSE(p->expired);
  EXPECT_FALSE(p->reminder);
  ASSERT_TRUE(s.last_prompt());
  EXPECT_EQ(s.last_prompt()->emitted_at, due);
  EXPECT_EQ(s.last_prompt()->thumbprint, thumb);
  EXPECT_EQ(s.last_prompt()->not_after, not_after);
}

TEST(renewal_schedule, nothing_is_due_before_the_window_and_the_timer_wakes_at_the_due_instant) {
  renewal_schedule s{not_after, thumb, policy()};
  for (auto now : {not_after - 365 * day, due - day, due - 1min, due - 1s})
    EXPECT_FALSE(s.on_tick(now));
  EXPECT_FALSE(s.last_prompt());
  // Far from the due instant, the timer still wakes every max_sleep to notice a clock set forward.
  EXPECT_EQ(s.next_wakeup(due - day), due - day + 60s);
  EXPECT_EQ(s.next_wakeup(due - 10s), due);
  EXPECT_EQ(s.next_wakeup(due), due);
}

TEST(renewal_schedule, status_reports_days_left_and_whether_renewal_is_due) {
  renewal_schedule s{not_after, thumb, policy()};
  auto before = s.status(due - 1s);
  EXPECT_FALSE(before.renewal_due);
  EXPECT_FALSE(before.expired);
  EXPECT_EQ(before.days_left, 30);  // 30 days and one second
  EXPECT_EQ(before.thumbprint, thumb);
  EXPECT_EQ(before.not_after, "2027-06-01T00:00:00Z");
  EXPECT_EQ(before.due_at, "2027-05-02T00:00:00Z");
  auto at = s.status(due);
  EXPECT_TRUE(at.renewal_due);
  EXPECT_EQ(at.days_left, 30);
  EXPECT_EQ(s.status(due + 1s).days_left, 29);
  // status() is read-only: it never consumes a prompt.
  EXPECT_TRUE(s.on_tick(due));
  auto last_second = s.status(not_after);
  EXPECT_FALSE(last_second.expired);
  EXPECT_EQ(last_second.days_left, 0);
  auto after = s.status(not_after + 1s);
  EXPECT_TRUE(after.expired);
  EXPECT_TRUE(after.renewal_due);
  EXPECT_EQ(after.days_left, -1);
}

// ---- Clock jumps. ------------------------------------------------------------------------------

TEST(renewal_schedule, forward_jump_past_the_due_instant_fires_once) {
  renewal_schedule s{not_after, thumb, policy()};
  EXPECT_FALSE(s.on_tick(due - hours{1}));
  auto jumped = due + 10 * day;
  auto p = s.on_tick(jumped);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->days_left, 20);
  EXPECT_FALSE(p->reminder);
  // Ten missed days are not ten prompts.
  EXPECT_FALSE(s.on_tick(jumped));
  EXPECT_FALSE(s.on_tick(jumped + 1s));
  EXPECT_FALSE(s.on_tick(jumped + hours{23}));
  EXPECT_EQ(s.next_wakeup(jumped + hours{23} + 59min + 30s), jumped + day);
  EXPECT_TRUE(s.on_tick(jumped + day));
}

TEST(renewal_schedule, backward_jump_after_firing_does_not_fire_again) {
  renewal_schedule s{not_after, thumb, policy()};
  auto fired_at = due + hours{2};
  ASSERT_TRUE(s.on_tick(fired_at));
  // Back to before the due instant, then forward through it and through the first firing.
  auto back = due - hours{5};
  EXPECT_FALSE(s.on_tick(back));
  EXPECT_FALSE(s.on_tick(due));
  EXPECT_FALSE(s.on_tick(fired_at));
  EXPECT_FALSE(s.on_tick(fired_at + hours{1}));
}

TEST(renewal_schedule,
     backward_jump_inside_the_window_delays_the_reminder_by_one_interval_at_most) {
  renewal_schedule s{not_after, thumb, policy()};
  auto fired_at = due + 3 * day;
  ASSERT_TRUE(s.on_tick(fired_at));
  auto back = fired_at - 2 * day;
  EXPECT_FALSE(s.on_tick(back));
  // The record now reads "prompted at the jump", to be stored again if the caller wants.
  EXPECT_EQ(s.last_prompt()->emitted_at, back);
  EXPECT_EQ(s.next_wakeup(back + day - 30s), back + day);
  EXPECT_FALSE(s.on_tick(back + day - 1s));
  auto p = s.on_tick(back + day);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->reminder);
}

// ---- Reminders and restarts. -------------------------------------------------------------------

TEST(renewal_schedule, reminder_repeats_every_interval_until_renewed) {
  renewal_schedule s{not_after, thumb, policy()};
  ASSERT_TRUE(s.on_tick(due));
  EXPECT_FALSE(s.on_tick(due + day - 1s));
  auto second = s.on_tick(due + day);
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->reminder);
  EXPECT_EQ(second->days_left, 29);
  EXPECT_FALSE(s.on_tick(due + 2 * day - 1s));
  auto third = s.on_tick(due + 2 * day);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->days_left, 28);
}

TEST(renewal_schedule, a_late_tick_counts_the_next_interval_from_the_prompt_it_emitted) {
  renewal_schedule s{not_after, thumb, policy()};
  ASSERT_TRUE(s.on_tick(due));
  // The daemon was busy (or suspended): the reminder comes late, and the next one a full interval
  // after it, not a burst to catch up.
  ASSERT_TRUE(s.on_tick(due + day + hours{5}));
  EXPECT_FALSE(s.on_tick(due + 2 * day));
  EXPECT_TRUE(s.on_tick(due + 2 * day + hours{5}));
}

TEST(renewal_schedule, restart_with_the_stored_record_does_not_fire_early) {
  auto fired_at = due + hours{3} + 250ms;
  std::string stored;
  {
    renewal_schedule before{not_after, thumb, policy()};
    ASSERT_TRUE(before.on_tick(fired_at));
    stored = encode_renewal_record(*before.last_prompt());
  }
  auto loaded = decode_renewal_record(stored);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  renewal_schedule after{not_after, thumb, policy(), *loaded};
  auto restarted = fired_at + hours{1};
  EXPECT_FALSE(after.on_tick(restarted));
  EXPECT_FALSE(after.on_tick(fired_at + day - 1ms));
  auto p = after.on_tick(fired_at + day);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->reminder);
}

TEST(renewal_schedule, restart_inside_the_window_without_a_record_fires_at_start_then_reminds) {
  // A certificate with 29 days left and nothing stored: one prompt at start, one a day later.
  auto start = not_after - 29 * day;
  renewal_schedule s{not_after, thumb, policy(), std::nullopt};
  EXPECT_EQ(s.next_wakeup(start), start);
  auto first = s.on_tick(start);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->days_left, 29);
  EXPECT_FALSE(s.on_tick(start + hours{12}));
  EXPECT_TRUE(s.on_tick(start + day));
}

TEST(renewal_schedule, a_record_about_another_certificate_is_ignored) {
  renewal_prompt_record old_cert{due + hours{1}, other_thumb, not_after - 365 * day};
  renewal_schedule s{not_after, thumb, policy(), old_cert};
  EXPECT_FALSE(s.last_prompt());
  EXPECT_TRUE(s.on_tick(due + hours{2}));

  // Same thumbprint, another notAfter: not this certificate either.
  renewal_prompt_record other_expiry{due + hours{1}, thumb, not_after + day};
  renewal_schedule t{not_after, thumb, policy(), other_expiry};
  EXPECT_TRUE(t.on_tick(due + hours{2}));
}

TEST(renewal_schedule, a_record_from_a_clock_that_was_ahead_does_not_fire_twice) {
  // Stored while the clock ran two days fast; the clock is right again at restart.
  renewal_prompt_record ahead{due + 3 * day, thumb, not_after};
  auto now = due + day;
  renewal_schedule s{not_after, thumb, policy(), ahead};
  EXPECT_FALSE(s.on_tick(now));
  EXPECT_FALSE(s.on_tick(now + day - 1s));
  EXPECT_TRUE(s.on_tick(now + day));
}

TEST(renewal_schedule, renewal_with_a_new_certificate_resets_the_schedule) {
  renewal_schedule s{not_after, thumb, policy()};
  ASSERT_TRUE(s.on_tick(due));
  auto renewed_at = due + hours{6};
  auto new_not_after = not_after + 365 * day;
  s.set_certificate(new_not_after, other_thumb);
  EXPECT_FALSE(s.last_prompt());
  EXPECT_FALSE(s.on_tick(renewed_at));
  EXPECT_FALSE(s.on_tick(due + day));  // no reminder about the old certificate
  EXPECT_FALSE(s.status(renewed_at).renewal_due);
  EXPECT_EQ(s.due_at(), new_not_after - 30 * day);
  auto p = s.on_tick(new_not_after - 30 * day);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->thumbprint, other_thumb);
  EXPECT_FALSE(p->reminder);
}

TEST(renewal_schedule, setting_the_same_certificate_again_changes_nothing) {
  renewal_schedule s{not_after, thumb, policy()};
  ASSERT_TRUE(s.on_tick(due));
  s.set_certificate(not_after, thumb);
  EXPECT_TRUE(s.last_prompt());
  EXPECT_FALSE(s.on_tick(due + hours{1}));
}

TEST(renewal_schedule, a_renewed_certificate_already_inside_the_window_prompts_at_once) {
  renewal_schedule s{not_after, thumb, policy()};
  ASSERT_TRUE(s.on_tick(due + 15 * day));
  // Its own due instant, notAfter - 30 d, is five days past.
  s.set_certificate(not_after + 10 * day, other_thumb);
  auto p = s.on_tick(due + 15 * day + hours{1});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->thumbprint, other_thumb);
  EXPECT_FALSE(p->reminder);
}

TEST(renewal_schedule, expired_certificate_still_prompts) {
  renewal_schedule s{not_after, thumb, policy()};
  auto p = s.on_tick(not_after + hours{1});
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->expired);
  EXPECT_EQ(p->days_left, -1);
  EXPECT_NE(describe(*p).find("expired at 2027-06-01T00:00:00Z"), std::string::npos)
      << describe(*p);
  auto later = s.on_tick(not_after + hours{1} + day);
  ASSERT_TRUE(later);
  EXPECT_TRUE(later->expired);
  EXPECT_EQ(later->days_left, -2);
}

TEST(renewal_schedule, at_not_after_exactly_the_certificate_is_not_yet_expired) {
  renewal_schedule s{not_after, thumb, policy()};
  auto p = s.on_tick(not_after);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->expired);
  EXPECT_EQ(p->days_left, 0);
}

TEST(renewal_schedule, the_warning_names_certificate_expiry_days_left_and_the_command) {
  renewal_prompt p{1, thumb, "2027-06-01T00:00:00Z", false, false};
  EXPECT_EQ(describe(p),
            "the manager certificate SHA256:manager-one expires at "
            "2027-06-01T00:00:00Z (1 day left); renew it with certfleet cert renew");
  p.days_left = 29;
  EXPECT_NE(describe(p).find("(29 days left)"), std::string::npos);
}

TEST(renewal_schedule, event_details_and_status_carry_the_documented_fields) {
  renewal_schedule s{not_after, thumb, policy()};
  auto p = s.on_tick(due + hours{1});
  ASSERT_TRUE(p);
  nlohmann::json details = *p;
  EXPECT_EQ(details, nlohmann::json::parse(R"({"days_left":29,"thumbprint":"SHA256:manager-one",
      "not_after":"2027-06-01T00:00:00Z","expired":false,"reminder":false})"));
  nlohmann::json status = s.status(due + hours{1});
  EXPECT_EQ(status, nlohmann::json::parse(R"({"days_left":29,"renewal_due":true,"expired":false,
      "thumbprint":"SHA256:manager-one","not_after":"2027-06-01T00:00:00Z",
      "due_at":"2027-05-02T00:00:00Z"})"));
}

TEST(renewal_schedule, policy_follows_the_configuration) {
  settings cfg;
  cfg.identity.renewal_warning_days = 14;
  cfg.identity.renewal_reminder_interval_s = 3600;
  auto p = renewal_policy_of(cfg);
  EXPECT_EQ(p.warning_days, 14);
  EXPECT_EQ(p.reminder_interval, 3600s);
  EXPECT_EQ(p.max_sleep, renewal_policy{}.max_sleep);
  auto defaults = renewal_policy_of(settings{});
  EXPECT_EQ(defaults.warning_days, 30);
  EXPECT_EQ(defaults.reminder_interval, 86400s);
}

// A timer loop as the timer actor runs it: sleep until next_wakeup (the wall clock moves by the
// sleep), then tick; one jump of the wall clock on the way.
TEST(renewal_schedule, a_timer_loop_prompts_once_per_interval_and_notices_a_jump_within_max_sleep) {
  renewal_schedule s{not_after, thumb, policy()};
  auto now = due - 2 * day;
  bool jumped = false;
  std::vector<wall_time> prompts;
  while (now < due + 5 * day) {
    if (auto p = s.on_tick(now)) prompts.push_back(now);
    auto wake = s.next_wakeup(now);
    ASSERT_GT(wake, now);  // once ticked, nothing is due at `now`: the timer never spins
    ASSERT_LE(wake - now, policy().max_sleep);
    now = wake;
    if (!jumped && now >= due + day + hours{1}) {
      now += 2 * day;  // the wall clock is set forward while the timer sleeps
      jumped = true;
    }
  }
  // due, due + 1 d; the jump lands at due + 3 d + 1 h (noticed at once); then due + 4 d + 1 h.
  ASSERT_EQ(prompts.size(), 4u);
  EXPECT_EQ(prompts[0], due);
  EXPECT_EQ(prompts[1], due + day);
  EXPECT_EQ(prompts[2], due + 3 * day + hours{1});
  EXPECT_EQ(prompts[3], due + 4 * day + hours{1});
}

// ---- The durable record. -----------------------------------------------------------------------

TEST(renewal_record, encodes_and_decodes_to_the_same_record) {
  renewal_prompt_record r{due + 1234ms, thumb, not_after};
  auto text = encode_renewal_record(r);
  EXPECT_EQ(text,
            "{\"emitted_at_ms\":1809216001234,\"not_after_s\":1811808000,"
            "\"thumbprint\":\"SHA256:manager-one\",\"version\":1}");
  auto back = decode_renewal_record(text);
  ASSERT_TRUE(back) << describe(back.error());
  EXPECT_EQ(*back, r);
}

TEST(renewal_record, damaged_records_are_refused_as_corrupt_data) {
  for (std::string bad : {
           "",
           "not json",
           "[1,2]",
           R"({"version":2,"thumbprint":"x","not_after_s":1,"emitted_at_ms":1})",
           R"({"thumbprint":"x","not_after_s":1,"emitted_at_ms":1})",
           R"({"version":1,"not_after_s":1,"emitted_at_ms":1})",
           R"({"version":1,"thumbprint":"x","not_after_s":"1","emitted_at_ms":1})",
           R"({"version":1,"thumbprint":"x","not_after_s":1,"emitted_at_ms":1.5})",
           R"({"version":1,"thumbprint":"x","not_after_s":99999999999999,"emitted_at_ms":1})",
       }) {
    SCOPED_TRACE(bad);
    auto decoded = decode_renewal_record(bad);
    ASSERT_FALSE(decoded);
    EXPECT_EQ(code_of(decoded.error()), ec::corrupt_data);
    EXPECT_NE(describe(decoded.error()).find("renewal prompt record"), std::string::npos);
  }
}

TEST(renewal_record, whole_days_round_towards_minus_infinity) {
  EXPECT_EQ(days_until(not_after, not_after - day), 1);
  EXPECT_EQ(days_until(not_after, not_after - day + 1s), 0);
  EXPECT_EQ(days_until(not_after, not_after), 0);
  EXPECT_EQ(days_until(not_after, not_after + 1s), -1);
  EXPECT_EQ(days_until(not_after, not_after + day), -1);
  EXPECT_EQ(days_until(not_after, not_after + day + 1s), -2);
}

// ---- Pinned server certificates. ---------------------------------------------------------------

const wall_time server_not_before = not_after - 365 * day;
const seconds tolerance = 300s;

server_certificate_state state_at(wall_time now, seconds tol = tolerance) {
  return classify_server_certificate(server_not_before, not_after, now, tol, 30).state;
}

TEST(server_certificate, classification_at_every_boundary) {
  using st = server_certificate_state;
  EXPECT_EQ(state_at(server_not_before - tolerance - 1s), st::not_yet_valid);
  EXPECT_EQ(state_at(server_not_before - tolerance), st::ok);
  EXPECT_EQ(state_at(server_not_before), st::ok);
  EXPECT_EQ(state_at(due - 1s), st::ok);
  EXPECT_EQ(state_at(due), st::expiring);
  EXPECT_EQ(state_at(not_after - 1s), st::expiring);
  EXPECT_EQ(state_at(not_after), st::expiring);
  EXPECT_EQ(state_at(not_after + tolerance), st::expiring);
  EXPECT_EQ(state_at(not_after + tolerance + 1s), st::expired);
}

TEST(server_certificate, without_tolerance_validity_is_exactly_not_before_to_not_after) {
  using st = server_certificate_state;
  EXPECT_EQ(state_at(server_not_before - 1s, 0s), st::not_yet_valid);
  EXPECT_EQ(state_at(server_not_before, 0s), st::ok);
  EXPECT_EQ(state_at(not_after, 0s), st::expiring);
  EXPECT_EQ(state_at(not_after + 1s, 0s), st::expired);
}

TEST(server_certificate, a_certificate_shorter_than_the_window_is_expiring_from_its_start) {
  auto short_not_before = not_after - 10 * day;
  auto c =
      classify_server_certificate(short_not_before, not_after, short_not_before, tolerance, 30);
  EXPECT_EQ(c.state, server_certificate_state::expiring);
  EXPECT_TRUE(c.usable());
  EXPECT_EQ(c.days_left, 10);
}

TEST(server_certificate, refused_certificates_say_why_and_usable_ones_say_nothing) {
  auto expired = classify_server_certificate(server_not_before, not_after, not_after + hours{1},
                                             tolerance, 30);
  EXPECT_FALSE(expired.usable());
  auto why = refusal_reason(expired, "SHA256:server", server_not_before, not_after, tolerance);
  EXPECT_NE(why.find("server certificate SHA256:server expired at 2027-06-01T00:00:00Z"),
            std::string::npos)
      << why;
  EXPECT_NE(why.find("daemon.clock_skew_tolerance_s"), std::string::npos) << why;

  auto early = classify_server_certificate(server_not_before, not_after,
                                           server_not_before - hours{1}, tolerance, 30);
  EXPECT_FALSE(early.usable());
  EXPECT_STREQ(to_string(early.state), "not_yet_valid");
  why = refusal_reason(early, "SHA256:server", server_not_before, not_after, tolerance);
  EXPECT_NE(why.find("is not valid before 2026-06-01T00:00:00Z"), std::string::npos) << why;
  EXPECT_NE(why.find("check the clocks"), std::string::npos) << why;

  auto fine = classify_server_certificate(server_not_before, not_after, due, tolerance, 30);
  EXPECT_TRUE(fine.usable());
  EXPECT_EQ(refusal_reason(fine, "SHA256:server", server_not_before, not_after, tolerance), "");
}

TEST(server_expiry_watch, expiring_is_raised_once_per_certificate) {
  server_expiry_watch watch;
  auto observe = [&](const std::string& t, wall_time now) {
    return watch.observe(t, server_not_before, not_after, now, tolerance, 30);
  };
  EXPECT_FALSE(observe("SHA256:a", due - 1s).emit_expiring);
  EXPECT_TRUE(observe("SHA256:a", due).emit_expiring);
  EXPECT_FALSE(observe("SHA256:a", due + hours{1}).emit_expiring);
  EXPECT_FALSE(observe("SHA256:a", not_after).emit_expiring);
  EXPECT_TRUE(observe("SHA256:b", due + hours{1}).emit_expiring);
  auto gone = observe("SHA256:a", not_after + tolerance + 1s);
  EXPECT_FALSE(gone.emit_expiring);
  EXPECT_EQ(gone.check.state, server_certificate_state::expired);

  // A restored watch remembers; a forgotten thumbprint is warned about again.
  server_expiry_watch restored{watch.warned()};
  EXPECT_FALSE(
      restored.observe("SHA256:a", server_not_before, not_after, due, tolerance, 30).emit_expiring);
  restored.forget("SHA256:a");
  EXPECT_TRUE(
      restored.observe("SHA256:a", server_not_before, not_after, due, tolerance, 30).emit_expiring);
}

}  // namespace
}  // namespace certfleet
