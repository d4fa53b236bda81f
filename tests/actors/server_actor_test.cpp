// Every transition of the server actor (actors/server_actor.hpp), run on CAF's deterministic test
// coordinator with injected time and randomness; the stage (real TLS on both ends in memory, a real
// RocksDB store, stand-ins for the supervisor, broker and connector) is
// tests/actors/server_world.hpp.
#include "tests/actors/server_world.hpp"

namespace certfleet {
namespace {

using namespace certfleet::test;

class server_actor_test : public server_actor_fixture {};

// -- pending_registration ------------------------------------------------------------------------

TEST_F(server_actor_test, a_new_server_asks_for_a_handshake_slot_and_connects_once_granted) {
  w->grant_slots = false;
  start();
  EXPECT_EQ(w->slot_requests, 1);
  EXPECT_EQ(w->connects, 0) << "no connect without a slot";
  caf::anon_send(server, slot_atom::value);
  sched->run();
  EXPECT_EQ(w->connects, 1);
}

TEST_F(server_actor_test, a_refused_connect_backs_off_by_the_injected_jitter_and_retries) {
  w->refuse_connects = true;
  start();
  EXPECT_EQ(w->connects, 1);
  EXPECT_EQ(w->releases, 1) << "the slot is given back at once";
  ASSERT_TRUE(w->presence);
  EXPECT_NE(w->presence->last_error.find("connection refused"), std::string::npos);
  advance(99ms);
  EXPECT_EQ(w->connects, 1) << "first retry after backoff_initial_ms (jitter at its maximum)";
  advance(1ms);
  EXPECT_EQ(w->connects, 2);
  EXPECT_EQ(state(), server_state::pending_registration);
}

TEST_F(server_actor_test, backoff_doubles_per_failed_attempt_up_to_its_cap) {
  w->refuse_connects = true;
  start();
  for (auto delay : {100ms, 200ms, 400ms, 500ms, 500ms}) {
    auto before = w->connects;
    advance(delay - 1ms);
    EXPECT_EQ(w->connects, before) << delay.count();
    advance(1ms);
    EXPECT_EQ(w->connects, before + 1) << delay.count();
  }
}

TEST_F(server_actor_test, full_jitter_can_retry_at_once) {
  w->random = [](uint64_t) -> uint64_t { return 0; };
  w->refuse_connects = true;
  start();
  advance(0ms);
  EXPECT_GE(w->connects, 2);
}

TEST_F(server_actor_test, a_handshake_that_never_completes_fails_at_its_deadline_and_retries) {
  w->server.answer_handshake = false;
  start();
  EXPECT_EQ(w->connects, 1);
  advance(1999ms);
  EXPECT_EQ(w->releases, 0) << "still handshaking";
  advance(1ms);
  EXPECT_EQ(w->releases, 1);
  EXPECT_EQ(w->closes, 1);
  EXPECT_NE(w->presence->last_error.find("did not complete within 2000 ms"), std::string::npos);
  advance(100ms);
  EXPECT_EQ(w->connects, 2);
  EXPECT_EQ(ctx->counters.handshake_failures, 1u);
}

TEST_F(server_actor_test, a_connection_lost_during_the_handshake_is_retried) {
  w->server.answer_handshake = false;
  start();
  ASSERT_TRUE(w->open);
  caf::anon_send(server, disconnected_atom::value, *w->open);
  sched->run();
  EXPECT_NE(w->presence->last_error.find("closed during the TLS handshake"), std::string::npos);
  advance(100ms);
  EXPECT_EQ(w->connects, 2);
}

TEST_F(server_actor_test, a_socket_that_arrives_for_an_abandoned_attempt_is_closed) {
  start();
  caf::anon_send(server, adopted_atom::value, connection_handle::from_int(999));
  sched->run();
  EXPECT_GE(w->closes, 1) << "not adopted twice";
}

// -- pending_registration -> registering -> ... -------------------------------------------------

TEST_F(server_actor_test, an_unknown_thumbprint_waits_for_validation_and_the_connection_closes) {
  register_unvalidated();
  auto r = stored();
  ASSERT_TRUE(r.presented);
  EXPECT_EQ(*r.presented, w->server.id.sha256());
  EXPECT_FALSE(r.pinned);
  EXPECT_EQ(r.remote_id, "vbr-1");
  EXPECT_EQ(events(), (std::vector<std::string>{"registered", "validation_required"}));
  EXPECT_EQ(w->server.count(wire::message_type::register_request), 1u);
  EXPECT_EQ(w->credential_erasures, std::vector<std::string>{"registered"});
  EXPECT_FALSE(w->open) << "not contacted while awaiting validation";
  EXPECT_EQ(w->server.count(wire::message_type::collect), 0u);
}

TEST_F(server_actor_test, the_expected_thumbprint_is_trusted_at_once_and_collected) {
  register_trusted();
  auto r = stored();
  EXPECT_EQ(r.validated_by, "expected");
  EXPECT_EQ(*r.pinned, w->server.id.sha256());
  EXPECT_EQ(events(), (std::vector<std::string>{"registered", "validated", "connection_up"}));
  EXPECT_EQ(w->credential_erasures, std::vector<std::string>{"registered"});
  EXPECT_EQ(w->server.count(wire::message_type::collect), 1u);
  auto inv = ctx->store->get_inventory(rec.id);
  ASSERT_TRUE(inv && *inv);
  EXPECT_NE((*inv)->find("nightly"), std::string::npos);
  EXPECT_EQ(r.last_collection_ms, w->now_ms) << "the injected clock";
  EXPECT_TRUE(w->presence->connected);
}

TEST_F(server_actor_test, the_tofu_policy_trusts_the_first_thumbprint_and_says_so) {
  ctx->cfg.daemon.trust_policy = trust_policy::tofu;
  start();
  EXPECT_EQ(state(), server_state::trusted);
  EXPECT_EQ(stored().validated_by, "tofu");
}

TEST_F(server_actor_test, a_certificate_other_than_the_expected_one_is_refused_before_credentials) {
  rec.expected = make_identity("impostor").sha256();
  start();
  EXPECT_EQ(state(), server_state::certificate_mismatch);
  EXPECT_EQ(w->server.count(wire::message_type::register_request), 0u) << "credentials not sent";
  EXPECT_EQ(w->credential_erasures, std::vector<std::string>{"certificate mismatch"});
  EXPECT_EQ(events(), std::vector<std::string>{"certificate_mismatch"});
  advance(10s);
  EXPECT_EQ(w->connects, 1) << "never contacted again";
}

TEST_F(server_actor_test, a_denied_registration_fails_with_the_reason_and_erases_the_credentials) {
  w->server.deny = wire::denied{wire::denial_reason::bad_credentials, "wrong password"};
  start();
  EXPECT_EQ(state(), server_state::auth_failed);
  EXPECT_NE(stored().last_error.find("bad_credentials"), std::string::npos);
  EXPECT_EQ(w->credential_erasures, std::vector<std::string>{"registration denied"});
  EXPECT_EQ(events(), std::vector<std::string>{"auth_failed"});
}

TEST_F(server_actor_test, a_registration_reply_with_another_thumbprint_is_not_trusted) {
  w->server.claimed_thumbprint = make_identity("other").sha256();
  start();
  EXPECT_EQ(state(), server_state::pending_registration) << "registers again from the start";
  EXPECT_NE(w->presence->last_error.find("not trusting it"), std::string::npos);
  EXPECT_TRUE(w->credential_erasures.empty());
}

TEST_F(server_actor_test, credentials_gone_before_registration_end_in_auth_failed) {
  w->credentials_gone = true;
  start();
  EXPECT_EQ(state(), server_state::auth_failed);
  EXPECT_EQ(w->server.count(wire::message_type::register_request), 0u);
  EXPECT_FALSE(w->open);
}

TEST_F(server_actor_test, expired_credentials_end_a_pending_registration_in_auth_failed) {
  w->refuse_connects = true;
  start();
  caf::anon_send(server, credentials_atom::value, remove_atom::value,
                 std::string{"credentials expired after 60 s"});
  sched->run();
  EXPECT_EQ(state(), server_state::auth_failed);
  auto before = w->connects;
  advance(1s);
  EXPECT_EQ(w->connects, before) << "no retries in auth_failed";
}

TEST_F(server_actor_test, a_server_restarted_in_registering_registers_again_from_the_start) {
  rec.state = server_state::registering;
  start();
  EXPECT_EQ(state(), server_state::awaiting_validation);
  EXPECT_EQ(w->server.count(wire::message_type::register_request), 1u);
}

TEST_F(server_actor_test, a_server_speaking_another_protocol_version_is_dropped_and_retried) {
  w->server.hello_answer = wire::hello{7, 9, "future"};
  start();
  EXPECT_NE(w->presence->last_error.find("protocol versions 7..9, this manager speaks 1..2"),
            std::string::npos)
      << w->presence->last_error;
  EXPECT_FALSE(w->open);
  advance(100ms);
  EXPECT_EQ(w->connects, 2);
}

// -- auth_failed -> pending_registration ---------------------------------------------------------

TEST_F(server_actor_test, new_credentials_after_a_denial_register_again_at_once) {
  w->server.deny = wire::denied{wire::denial_reason::bad_credentials, ""};
  start();
  ASSERT_EQ(state(), server_state::auth_failed);
  w->server.deny.reset();
  auto v = ask<server_view>(credentials_atom::value, std::string{"backup-admin"});
  ASSERT_TRUE(v) << describe(v.error());
  sched->run();
  EXPECT_EQ(state(), server_state::awaiting_validation);
  EXPECT_EQ(w->connects, 2);
}

// -- awaiting_validation -------------------------------------------------------------------------

TEST_F(server_actor_test, trusting_the_presented_thumbprint_pins_it_connects_and_collects) {
  register_unvalidated();
  auto v = ask<server_view>(trust_atom::value, w->server.id.sha256(), std::string{"admin"});
  ASSERT_TRUE(v) << describe(v.error());
  sched->run();
  auto r = stored();
  EXPECT_EQ(r.state, server_state::trusted);
  EXPECT_EQ(r.validated_by, "admin");
  EXPECT_EQ(w->server.count(wire::message_type::collect), 1u);
  EXPECT_TRUE(has_event("connection_up"));
}

TEST_F(server_actor_test, trusting_another_thumbprint_than_presented_is_refused) {
  register_unvalidated();
  auto v = ask<server_view>(trust_atom::value, make_identity("x").sha256(), std::string{"admin"});
  ASSERT_FALSE(v);
  EXPECT_EQ(code_of(v.error()), ec::invalid_argument);
  EXPECT_EQ(state(), server_state::awaiting_validation);
}

TEST_F(server_actor_test, trust_before_any_certificate_was_presented_is_refused) {
  w->refuse_connects = true;
  start();
  auto v = ask<server_view>(trust_atom::value, w->server.id.sha256(), std::string{"admin"});
  ASSERT_FALSE(v);
  EXPECT_EQ(code_of(v.error()), ec::invalid_state);
}

TEST_F(server_actor_test, rejecting_the_presented_thumbprint_blocks_the_server) {
  register_unvalidated();
  auto v = ask<server_view>(reject_atom::value);
  ASSERT_TRUE(v) << describe(v.error());
  EXPECT_EQ(state(), server_state::certificate_mismatch);
  EXPECT_TRUE(has_event("rejected"));
}

TEST_F(server_actor_test, reject_is_refused_when_nothing_awaits_validation) {
  w->refuse_connects = true;
  start();
  auto v = ask<server_view>(reject_atom::value);
  ASSERT_FALSE(v);
  EXPECT_EQ(code_of(v.error()), ec::invalid_state);
}

// -- trusted -------------------------------------------------------------------------------------

TEST_F(server_actor_test, a_trusted_server_is_collected_again_after_the_jittered_interval) {
  w->random = [](uint64_t) -> uint64_t { return 0; };
  register_trusted();
  ASSERT_EQ(w->server.count(wire::message_type::collect), 1u);
  advance(8999ms);  // interval 10 s, minus a tenth, plus jitter 0
  EXPECT_EQ(w->server.count(wire::message_type::collect), 1u);
  advance(1ms);
  EXPECT_EQ(w->server.count(wire::message_type::collect), 2u);
}

TEST_F(server_actor_test, a_lost_trusted_connection_is_announced_and_reestablished) {
  register_trusted();
  ASSERT_TRUE(w->open);
  caf::anon_send(server, disconnected_atom::value, *w->open);
  sched->run();
  EXPECT_TRUE(has_event("connection_down"));
  EXPECT_FALSE(w->presence->connected);
  advance(100ms);
  EXPECT_EQ(w->connects, 2);
  auto t = events();
  EXPECT_EQ(std::count(t.begin(), t.end(), "connection_up"), 2);
  EXPECT_TRUE(w->presence->connected);
  EXPECT_EQ(state(), server_state::trusted);
}

TEST_F(server_actor_test, trusting_the_pinned_thumbprint_again_changes_nothing) {
  register_trusted();
  auto before = events().size();
  auto v = ask<server_view>(trust_atom::value, w->server.id.sha256(), std::string{"admin"});
  ASSERT_TRUE(v);
  EXPECT_EQ(events().size(), before);
}

TEST_F(server_actor_test, a_changed_certificate_blocks_collection_until_trusted) {
  register_trusted();
  caf::anon_send(server, disconnected_atom::value, *w->open);
  sched->run();
  w->server.id = make_identity("backup-1-renewed");
  w->server.cache = std::make_shared<tls_session_cache>(16);  // no resumption across the change
  advance(100ms);
  EXPECT_EQ(state(), server_state::certificate_changed);
  EXPECT_EQ(*stored().presented, w->server.id.sha256());
  EXPECT_TRUE(has_event("certificate_changed"));
  auto collects = w->server.count(wire::message_type::collect);
  advance(60s);
  EXPECT_EQ(w->server.count(wire::message_type::collect), collects) << "not contacted";
  // certificate_changed -> trusted
  auto v = ask<server_view>(trust_atom::value, w->server.id.sha256(), std::string{"admin"});
  ASSERT_TRUE(v) << describe(v.error());
  sched->run();
  EXPECT_EQ(state(), server_state::trusted);
  EXPECT_EQ(w->server.count(wire::message_type::collect), collects + 1);
}

TEST_F(server_actor_test, rejecting_a_changed_certificate_keeps_the_server_blocked) {
  register_trusted();
  caf::anon_send(server, disconnected_atom::value, *w->open);
  sched->run();
  w->server.id = make_identity("backup-1-renewed");
  w->server.cache = std::make_shared<tls_session_cache>(16);
  advance(100ms);
  ASSERT_EQ(state(), server_state::certificate_changed);
  auto v = ask<server_view>(reject_atom::value);
  ASSERT_TRUE(v) << describe(v.error());
  EXPECT_EQ(state(), server_state::certificate_changed);
  EXPECT_TRUE(has_event("rejected"));
}

// -- blocked states and every state ------------------------------------------------------------

TEST_F(server_actor_test, a_blocked_server_never_asks_for_a_slot_and_gives_back_a_late_one) {
  rec.state = server_state::certificate_mismatch;
  start();
  EXPECT_EQ(w->slot_requests, 0);
  caf::anon_send(server, slot_atom::value);
  caf::anon_send(server, connected_atom::value, uint64_t{0}, ::open("/dev/null", O_RDONLY));
  sched->run();
  EXPECT_EQ(w->releases, 1);
  EXPECT_EQ(w->connects, 0);
}

TEST_F(server_actor_test, trusting_a_mismatched_server_is_refused_with_the_fix_that_registers_it) {
  rec.expected = make_identity("impostor").sha256();
  start();
  ASSERT_EQ(state(), server_state::certificate_mismatch);
  // It never registered this manager: trusted now, it could never connect.
  auto v = ask<server_view>(trust_atom::value, w->server.id.sha256(), std::string{"admin"});
  ASSERT_FALSE(v);
  EXPECT_EQ(code_of(v.error()), ec::invalid_state);
  EXPECT_NE(describe(v.error()).find("'certfleet server credentials " + rec.id), std::string::npos)
      << describe(v.error());
  EXPECT_EQ(state(), server_state::certificate_mismatch);
  EXPECT_EQ(w->server.count(wire::message_type::register_request), 0u);
  // New credentials register it; the thumbprint it presents then awaits validation.
  auto again = ask<server_view>(credentials_atom::value, std::string{"backup-admin"});
  ASSERT_TRUE(again) << describe(again.error());
  sched->run();
  EXPECT_EQ(state(), server_state::awaiting_validation);
  EXPECT_EQ(w->server.count(wire::message_type::register_request), 1u);
  EXPECT_FALSE(stored().expected) << "the thumbprint given in advance proved wrong";
  auto t = ask<server_view>(trust_atom::value, w->server.id.sha256(), std::string{"admin"});
  ASSERT_TRUE(t) << describe(t.error());
  sched->run();
  EXPECT_EQ(state(), server_state::trusted);
  EXPECT_EQ(w->server.count(wire::message_type::collect), 1u);
}

TEST_F(server_actor_test, show_reports_the_live_connection_and_retained_credentials) {
  register_trusted();
  auto v = ask<server_view>(show_atom::value);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->connected);
  EXPECT_EQ(v->record.state, server_state::trusted);
  EXPECT_NE(v->inventory_json.find("nightly"), std::string::npos);
}

TEST_F(server_actor_test, remove_closes_the_connection_deletes_the_record_and_stops_the_actor) {
  register_trusted();
  auto r = ask<bool>(remove_atom::value);
  ASSERT_TRUE(r);
  EXPECT_FALSE(w->open);
  auto gone = ctx->store->get_server(rec.id);
  ASSERT_TRUE(gone);
  EXPECT_FALSE(*gone);
  auto v = ask<server_view>(show_atom::value);
  EXPECT_FALSE(v) << "the actor is gone";
}

// -- flapping ------------------------------------------------------------------------------------

TEST_F(server_actor_test,
       a_server_that_closes_after_every_handshake_is_retried_with_growing_backoff) {
  register_trusted();
  ASSERT_EQ(w->connects, 1);
  w->flap = true;
  w->server.answer_messages = false;
  caf::anon_send(server, disconnected_atom::value, *w->open);
  sched->run();
  // Jitter at its maximum: 100, 200, 400, then the 500 ms cap. Resetting the backoff at every
  // completed handshake retried every 100 ms (about 100 connects in these 10 s).
  for (int i = 0; i < 100; ++i) advance(100ms);
  EXPECT_GE(w->connects, 18);
  EXPECT_LE(w->connects, 24);
  EXPECT_GE(w->server.connections, 17) << "each retry completed TLS";
  EXPECT_GE(stored().failed_attempts, 15u);
  EXPECT_EQ(state(), server_state::trusted);
}

TEST_F(server_actor_test, a_flapping_server_records_a_bounded_number_of_connectivity_events) {
  register_trusted();
  w->flap = true;
  w->server.answer_messages = false;
  caf::anon_send(server, disconnected_atom::value, *w->open);
  sched->run();
  for (int i = 0; i < 100; ++i) advance(100ms);
  auto t = events();
  auto ups = std::count(t.begin(), t.end(), "connection_up");
  auto downs = std::count(t.begin(), t.end(), "connection_down");
  EXPECT_EQ(ups, 6) << "at most 6 cycles an hour are recorded";
  EXPECT_EQ(downs, 6) << "every recorded up has its down, no other";
  EXPECT_GE(w->connects, 18);
}

TEST_F(server_actor_test, a_completed_collection_resets_the_backoff) {
  register_trusted();
  w->flap = true;
  w->server.answer_messages = false;
  caf::anon_send(server, disconnected_atom::value, *w->open);
  sched->run();
  for (int i = 0; i < 30; ++i) advance(100ms);  // 100 + 200 + 400 + 500 + 500 + ...
  ASSERT_GE(stored().failed_attempts, 4u);
  w->flap = false;
  w->server.answer_messages = true;
  advance(500ms);  // the next attempt stays up and is collected
  EXPECT_EQ(stored().failed_attempts, 0u);
  auto before = w->connects;
  caf::anon_send(server, disconnected_atom::value, *w->open);
  sched->run();
  advance(100ms);
  EXPECT_EQ(w->connects, before + 1) << "back to the initial delay";
}

// -- refusals ------------------------------------------------------------------------------------

TEST_F(server_actor_test,
       a_trusted_server_that_no_longer_knows_the_manager_is_auth_failed_with_the_fix) {
  register_trusted();
  w->server.deny_collect =
      wire::denied{wire::denial_reason::not_registered, "unknown client certificate\x1b[2J"};
  advance(11s);  // the next collection (jitter at its maximum) is refused
  EXPECT_EQ(state(), server_state::auth_failed);
  auto err = stored().last_error;
  EXPECT_NE(err.find("[not_registered]"), std::string::npos) << err;
  EXPECT_NE(err.find("register again with 'certfleet server credentials s-00000001"),
            std::string::npos)
      << err;
  EXPECT_EQ(err.find('\x1b'), std::string::npos) << "the server's text is escaped";
  EXPECT_TRUE(has_event("auth_failed"));
  auto connects = w->connects;
  advance(10s);
  EXPECT_EQ(w->connects, connects) << "blocked: not contacted until new credentials";
}

TEST_F(server_actor_test, a_revoked_manager_is_told_so) {
  register_trusted();
  w->server.deny_collect = wire::denied{wire::denial_reason::manager_revoked, ""};
  advance(11s);
  EXPECT_EQ(state(), server_state::auth_failed);
  EXPECT_NE(stored().last_error.find("revoked"), std::string::npos);
}

TEST_F(server_actor_test, a_locked_account_keeps_the_credentials_and_retries_with_backoff) {
  w->server.deny = wire::denied{wire::denial_reason::locked_out, "try later"};
  start();
  EXPECT_EQ(state(), server_state::pending_registration);
  EXPECT_TRUE(w->credential_erasures.empty());
  ASSERT_TRUE(w->presence);
  EXPECT_NE(w->presence->last_error.find("locked"), std::string::npos);
  EXPECT_NE(w->presence->last_error.find("retrying"), std::string::npos);
  w->server.deny.reset();
  advance(100ms);
  EXPECT_EQ(w->connects, 2);
  EXPECT_EQ(state(), server_state::awaiting_validation) << "registered on the retry";
}

TEST_F(server_actor_test, a_certificate_changed_refusal_reconnects_and_sees_the_new_certificate) {
  register_trusted();
  w->server.deny_collect = wire::denied{wire::denial_reason::certificate_changed, ""};
  advance(11s);
  ASSERT_EQ(state(), server_state::trusted) << "not blocked: the next connection tells";
  w->server.deny_collect.reset();
  w->server.id = make_identity("backup-1-renewed");
  w->server.cache = std::make_shared<tls_session_cache>(16);
  advance(200ms);
  EXPECT_EQ(state(), server_state::certificate_changed);
}

TEST_F(server_actor_test, a_registered_server_id_with_control_bytes_is_stored_escaped) {
  w->server.claimed_id = std::string{"vbr\r\n[warn] forged\x07"};
  start();
  ASSERT_EQ(state(), server_state::awaiting_validation);
  EXPECT_EQ(stored().remote_id, "vbr\\x0D\\x0A[warn] forged\\x07");
}

TEST_F(server_actor_test, an_inventory_with_control_bytes_and_invalid_utf8_is_stored_escaped) {
  w->server.job_name = std::string{"job\xff\x1b]0;pwned\x07"};
  register_trusted();
  auto inv = ctx->store->get_inventory(rec.id);
  ASSERT_TRUE(inv && *inv) << "the inventory was stored (the actor did not fail on it)";
  EXPECT_NE((*inv)->find("job\\\\xFF\\\\x1B]0;pwned\\\\x07"), std::string::npos) << **inv;
  EXPECT_EQ(stored().state, server_state::trusted);
}

}  // namespace
}  // namespace certfleet

namespace certfleet {
namespace {

// -- the validity of the server's certificate ----------------------------------------------------

int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

TEST_F(server_actor_test, registration_records_the_certificate_dates_and_reports_the_pin_to_watch) {
  register_trusted();
  auto r = stored();
  EXPECT_EQ(r.certificate_not_before_ms, unix_ms(w->server.id.not_before()));
  EXPECT_EQ(r.certificate_not_after_ms, unix_ms(w->server.id.not_after()));
  ASSERT_FALSE(w->watched.empty());
  EXPECT_EQ(w->watched.back().server_id, rec.id);
  EXPECT_EQ(w->watched.back().thumbprint, w->server.id.sha256().to_string());
  EXPECT_EQ(w->watched.back().not_after, w->server.id.not_after());
  EXPECT_FALSE(w->watched.back().warned);
}

/// A record already trusted and pinned on the backup server's certificate, with its dates.
void make_trusted(server_record& rec, const identity& id) {
  rec.state = server_state::trusted;
  rec.presented = rec.pinned = id.sha256();
  rec.validated_by = "admin";
  rec.certificate_not_before_ms = unix_ms(id.not_before());
  rec.certificate_not_after_ms = unix_ms(id.not_after());
}

TEST_F(server_actor_test, an_expired_server_certificate_is_refused_with_the_reason_and_retried) {
  make_trusted(rec, w->server.id);
  // 301 s past notAfter: beyond the default clock skew tolerance of 300 s.
  w->now_ms = unix_ms(w->server.id.not_after()) + 301'000;
  start();
  EXPECT_EQ(state(), server_state::trusted) << "still pinned: a new certificate is validated anew";
  ASSERT_TRUE(w->presence);
  EXPECT_FALSE(w->presence->connected);
  const auto& why = w->presence->last_error;
  EXPECT_NE(why.find("server certificate " + w->server.id.sha256().to_string() + " expired at"),
            std::string::npos)
      << why;
  EXPECT_NE(why.find("clock skew tolerance 300 s"), std::string::npos) << why;
  EXPECT_EQ(w->server.count(wire::message_type::collect), 0u);
  advance(100ms);
  EXPECT_EQ(w->connects, 2) << "retried with backoff: the clock may have been wrong";
}

TEST_F(server_actor_test, a_server_certificate_within_the_clock_skew_tolerance_is_accepted) {
  make_trusted(rec, w->server.id);
  w->now_ms = unix_ms(w->server.id.not_after()) + 299'000;
  start();
  ASSERT_TRUE(w->presence);
  EXPECT_TRUE(w->presence->connected) << w->presence->last_error;
  EXPECT_EQ(w->server.count(wire::message_type::collect), 1u);
}

TEST_F(server_actor_test, a_server_certificate_not_valid_yet_is_refused_with_the_reason) {
  make_trusted(rec, w->server.id);
  w->now_ms = unix_ms(w->server.id.not_before()) - 301'000;
  start();
  ASSERT_TRUE(w->presence);
  EXPECT_FALSE(w->presence->connected);
  EXPECT_NE(w->presence->last_error.find("is not valid before"), std::string::npos)
      << w->presence->last_error;
  EXPECT_NE(w->presence->last_error.find("check the clocks of both machines"), std::string::npos);
}

TEST_F(server_actor_test, a_restarted_actor_reports_its_pinned_certificate_with_the_warning_state) {
  make_trusted(rec, w->server.id);
  rec.expiry_warned = w->server.id.sha256();
  start();
  ASSERT_FALSE(w->watched.empty());
  EXPECT_TRUE(w->watched.front().warned);
}

TEST_F(server_actor_test, an_expiring_certificate_gets_one_durable_event_remembered_in_the_record) {
  register_trusted();
  auto t = w->server.id.sha256().to_string();
  std::string details = R"({"thumbprint":")" + t + R"(","days_left":20})";
  caf::anon_send(server, expiring_atom::value, t, details);
  caf::anon_send(server, expiring_atom::value, t, details);
  sched->run();
  auto types = events();
  EXPECT_EQ(std::count(types.begin(), types.end(), "server_certificate_expiring"), 1);
  auto r = stored();
  ASSERT_TRUE(r.expiry_warned);
  EXPECT_EQ(r.expiry_warned->to_string(), t);
}

TEST_F(server_actor_test, an_expiry_warning_about_another_certificate_than_the_pin_is_ignored) {
  register_trusted();
  caf::anon_send(server, expiring_atom::value, make_identity("other").sha256().to_string(),
                 std::string{"{}"});
  sched->run();
  EXPECT_FALSE(has_event("server_certificate_expiring"));
}

TEST_F(server_actor_test, a_changed_certificate_stops_the_watch_of_the_old_pin) {
  register_trusted();
  caf::anon_send(server, disconnected_atom::value, *w->open);
  sched->run();
  w->server.id = make_identity("backup-1-new.example");
  w->server.cache = std::make_shared<tls_session_cache>(16);  // no resumption across the change
  advance(100ms);
  ASSERT_EQ(state(), server_state::certificate_changed);
  ASSERT_FALSE(w->unwatched.empty());
  EXPECT_EQ(w->unwatched.back(), rec.id);
  EXPECT_EQ(stored().certificate_not_after_ms, unix_ms(w->server.id.not_after()))
      << "the dates of the certificate presented last";
}

}  // namespace
}  // namespace certfleet

namespace certfleet {
namespace {

// -- legacy credential servers -------------------------------------------------------------------

TEST_F(server_actor_test,
       a_legacy_server_is_detected_by_its_hello_and_logs_in_with_kept_credentials) {
  w->server.legacy = true;
  rec.expected = w->server.id.sha256();
  start();
  EXPECT_EQ(state(), server_state::trusted);
  EXPECT_EQ(stored().auth, server_auth::legacy_credentials);
  EXPECT_EQ(w->server.count(wire::message_type::legacy_login), 1u);
  EXPECT_EQ(w->server.count(wire::message_type::collect), 1u);
  EXPECT_TRUE(w->credential_erasures.empty()) << "kept while the server is legacy";
  // Every session logs in again.
  caf::anon_send(server, disconnected_atom::value, *w->open);
  sched->run();
  advance(100ms);
  EXPECT_EQ(w->server.count(wire::message_type::legacy_login), 2u);
  EXPECT_EQ(w->server.count(wire::message_type::collect), 2u);
  EXPECT_TRUE(w->credential_erasures.empty());
}

TEST_F(server_actor_test,
       an_upgraded_legacy_server_registers_with_certificates_then_credentials_go) {
  w->server.legacy = true;
  rec.expected = w->server.id.sha256();
  start();
  ASSERT_EQ(stored().auth, server_auth::legacy_credentials);
  w->server.legacy = false;
  caf::anon_send(server, disconnected_atom::value, *w->open);
  sched->run();
  advance(100ms);
  EXPECT_EQ(stored().auth, server_auth::certificates);
  EXPECT_EQ(w->server.count(wire::message_type::register_request), 1u);
  EXPECT_EQ(state(), server_state::trusted);
  EXPECT_EQ(stored().validated_by, "expected") << "its validated thumbprint was the expected one";
  EXPECT_EQ(w->credential_erasures, std::vector<std::string>{"registered"});
  EXPECT_EQ(w->server.count(wire::message_type::collect), 2u);
}

// -- an idle server rests -------------------------------------------------------------------------
// An idle server gives up its handlers until its next message (actors/server_actor.cpp,
// `rest_if_idle`); what it answers, and when, must not change.

TEST_F(server_actor_test, an_idle_server_answers_requests_between_its_retries) {
  w->refuse_connects = true;
  start();
  ASSERT_EQ(w->connects, 1);
  auto v = ask<server_view>(show_atom::value);
  ASSERT_TRUE(v) << describe(v.error());
  EXPECT_EQ(v->record.state, server_state::pending_registration);
  EXPECT_FALSE(v->connected);
  auto refused = ask<server_view>(trust_atom::value, w->server.id.sha256(), std::string{"admin"});
  ASSERT_FALSE(refused);
  EXPECT_EQ(code_of(refused.error()), ec::invalid_state);
  advance(99ms);
  EXPECT_EQ(w->connects, 1) << "the retry keeps its time";
  advance(1ms);
  EXPECT_EQ(w->connects, 2);
  w->refuse_connects = false;
  advance(200ms);
  EXPECT_EQ(w->connects, 3);
  EXPECT_EQ(state(), server_state::awaiting_validation) << "the retry registered it";
}

TEST_F(server_actor_test, requests_sent_to_an_idle_server_are_answered_in_the_order_sent) {
  register_unvalidated();
  caf::scoped_actor self{*sys, true};
  auto trust = self->request(server, caf::infinite, trust_atom::value, w->server.id.sha256(),
                             std::string{"admin"});
  auto show = self->request(server, caf::infinite, show_atom::value);
  sched->run();
  std::optional<server_view> trusted;
  std::optional<server_view> shown;
  trust.receive([&](server_view& v) { trusted = std::move(v); },
                [&](caf::error& e) { ADD_FAILURE() << describe(e); });
  show.receive([&](server_view& v) { shown = std::move(v); },
               [&](caf::error& e) { ADD_FAILURE() << describe(e); });
  ASSERT_TRUE(trusted && shown);
  EXPECT_EQ(trusted->record.state, server_state::trusted);
  EXPECT_EQ(shown->record.state, server_state::trusted) << "show came after trust";
  EXPECT_EQ(w->server.count(wire::message_type::collect), 1u) << "and it connected";
}

TEST_F(server_actor_test, a_blocked_server_that_rests_still_refuses_what_it_refused) {
  register_unvalidated();
  ASSERT_TRUE(ask<server_view>(reject_atom::value));
  ASSERT_EQ(state(), server_state::certificate_mismatch);
  auto v = ask<server_view>(trust_atom::value, w->server.id.sha256(), std::string{"admin"});
  ASSERT_FALSE(v);
  EXPECT_EQ(code_of(v.error()), ec::invalid_state);
  EXPECT_NE(describe(v.error()).find("certfleet server credentials"), std::string::npos);
  auto again = ask<server_view>(reject_atom::value);
  ASSERT_FALSE(again);
  EXPECT_EQ(code_of(again.error()), ec::invalid_state);
  EXPECT_EQ(w->slot_requests, 1) << "never contacted again";
}

}  // namespace
}  // namespace certfleet
