#include "actors/server_actor.hpp"

#include <unistd.h>

#include <vector>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/detail/default_invoke_result_visitor.hpp>
#include <caf/io/connection_handle.hpp>
#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"
#include "actors/backoff.hpp"
#include "actors/events.hpp"
#include "actors/legacy_servers.hpp"
#include "actors/refusal.hpp"
#include "actors/server_certificate.hpp"
#include "common/address.hpp"
#include "common/failpoint.hpp"
#include "common/peer_text.hpp"
#include "protocol/session_forget.hpp"

namespace certfleet {
namespace {

using namespace std::chrono;

/// Where the connection to the server stands. Exactly one value at a time, so "holding a handshake
/// slot" or "up" cannot disagree with the rest.
enum class link : uint8_t {
  idle,           // no connection, none asked for
  awaiting_slot,  // asked the admission actor for a handshake slot
  connecting,     // slot held: TCP connect, then the broker adopting the socket
  handshaking,    // slot held: TLS handshake on the adopted connection
  established,    // TLS up, registration exchange in progress (pending_registration/registering)
  online,         // trusted and up, connection_up published; waiting for the next collection
  collecting,     // online, a `collect` sent and its inventory not yet stored
};

// At most this many connection_up/connection_down pairs per server and window reach the event log
// (docs/reliability.md, "Flapping servers").
constexpr uint32_t max_recorded_flaps = 6;
constexpr milliseconds flap_window = hours{1};

struct server_data;
using server_actor = caf::stateful_actor<server_data>;

/// What a state that contacts its server does with the connection: which certificate it accepts,
/// what it does once TLS is up, and which replies of the server it expects. States without a role
/// never start a connection.
struct link_role {
  pin_check (*pin)(const server_record& rec);
  void (*on_up)(server_actor* self);
  void (*on_reply)(server_actor* self, wire::message& m);
  /// The pin check refused the certificate the server presented.
  void (*on_pin_rejected)(server_actor* self, const thumbprint& presented);
};

struct server_data {
  context_ptr ctx;
  server_peers peers;
  server_record rec;
  /// The role of the connection in the current state; nullptr when the state does not connect.
  const link_role* role = nullptr;
  link conn = link::idle;
  // A ping went out since the server was last heard from (beside `conn`: no extra memory).
  bool ping_unanswered = false;
  // The current connection attempt; messages about older attempts are ignored.
  uint64_t generation = 0;
  std::optional<caf::io::connection_handle> hdl;
  std::unique_ptr<tls_client_session> tls;
  /// The manager certificate of the current (or last) session: during a rotation, the previous
  /// one until this server's agent acknowledged the new one (actors/manager_identities.hpp).
  std::optional<thumbprint> presenting;
  // TLS records produced while handling one message, written to the broker as one write: a
  // handshake flight is 5 records, and one message and one send() each cost more than the crypto
  // of small records (flush_output).
  std::vector<char> outbuf;
  // A vector, not a deque: an empty std::deque allocates ~600 bytes, and most of the fleet sits
  // idle with no connection at all (100,000 servers: ~60 MiB).
  std::vector<wire::message> inbox;
  reconnect_backoff backoff;
  connectivity_limiter connectivity{max_recorded_flaps, flap_window};
  // For the latency histograms in `status`.
  steady_clock::time_point handshake_started;
  steady_clock::time_point collect_sent;
  // Liveness (watch_liveness): when the server was last heard from, on the actor clock.
  caf::actor_clock::time_point last_heard;
  static inline const char* name = "certfleet.server";
};

bool holds_slot(link l) {
  return l == link::connecting || l == link::handshaking;
}
bool is_up(link l) {
  return l == link::online || l == link::collecting;
}
bool tls_up(link l) {
  return l == link::established || is_up(l);
}

caf::behavior pending_registration(server_actor* self);
caf::behavior registering(server_actor* self);
caf::behavior awaiting_validation(server_actor* self);
caf::behavior trusted(server_actor* self);
caf::behavior blocked(server_actor* self);
void offer_rotation(server_actor* self);
caf::behavior mismatched(server_actor* self);
void rest_if_idle(server_actor* self);
extern const link_role registration_role;
extern const link_role registering_role;
extern const link_role trusted_role;
extern const link_role legacy_registration_role;
extern const link_role legacy_registering_role;
extern const link_role legacy_trusted_role;
void on_version_change(server_actor* self, uint8_t version);

std::string address_of(const server_record& r) {
  return format_address(r.host, r.port);
}

/// Sets state `s` and the connection role that goes with it.
void set_state(server_actor* self, server_state s) {
  auto& st = self->state;
  st.rec.state = s;
  auto legacy = is_legacy(st.rec);
  switch (s) {
    case server_state::pending_registration:
      st.role = legacy ? &legacy_registration_role : &registration_role;
      return;
    case server_state::registering:
      st.role = legacy ? &legacy_registering_role : &registering_role;
      return;
    case server_state::trusted:
      st.role = legacy ? &legacy_trusted_role : &trusted_role;
      return;
    case server_state::awaiting_validation:
    case server_state::certificate_mismatch:
    case server_state::certificate_changed:
    case server_state::auth_failed:
    case server_state::reregistration_required:
    case server_state::removed:
      break;
  }
  st.role = nullptr;
}

/// The behavior of the current state.
caf::behavior behavior_of(server_actor* self) {
  switch (self->state.rec.state) {
    case server_state::pending_registration:
      return pending_registration(self);
    case server_state::registering:
      return registering(self);
    case server_state::awaiting_validation:
      return awaiting_validation(self);
    case server_state::trusted:
      return trusted(self);
    case server_state::certificate_mismatch:
      return mismatched(self);
    case server_state::certificate_changed:
    case server_state::auth_failed:
    case server_state::reregistration_required:
    case server_state::removed:
      break;
  }
  return blocked(self);
}

/// Switches to state `s`; persisting it is the caller's job. Wakes a resting actor.
void enter(server_actor* self, server_state s) {
  set_state(self, s);
  self->set_default_handler(caf::print_and_drop);
  self->become(behavior_of(self));
}

/// Tells the registry how this server stands, for `list` and `status`.
void report_presence(server_actor* self) {
  auto& st = self->state;
  self->send(st.peers.registry, state_atom::value,
             server_presence{st.rec.id, st.rec.state, is_up(st.conn), st.rec.last_error});
}

/// Tells the renewal actor which pinned certificate to watch for this server (or none).
void report_certificate(server_actor* self) {
  auto& st = self->state;
  if (!st.ctx->renewal) return;
  if (auto w = watch_of(st.rec))
    self->send(st.ctx->renewal, watch_atom::value, std::move(*w));
  else
    self->send(st.ctx->renewal, watch_atom::value, remove_atom::value, st.rec.id);
}

/// Saves the record with `events` through the storage actor without waiting for it: connectivity
/// and progress, not trust. Ordered after every earlier write of this actor; the storage actor
/// logs a failure.
void persist(server_actor* self, std::vector<event_record> events) {
  auto& st = self->state;
  st.rec.updated_ms = st.ctx->now_ms();
  self->send(st.ctx->storage, persist_atom::value, st.rec, std::move(events));
  report_presence(self);
}

/// `connection_up` for a connection that just came up, unless this server flaps too often to
/// record every cycle; it then counts the cycles left out.
std::vector<event_record> connection_up_events(server_actor* self) {
  auto& st = self->state;
  if (!st.connectivity.up(st.ctx->now_ms())) return {};
  nlohmann::json details = nlohmann::json::object();
  if (auto n = st.connectivity.take_suppressed()) details["suppressed_cycles"] = n;
  return {make_event(st.rec, event_type::connection_up, details)};
}

/// Saves the record with `events` durably (a trust decision), then runs `done(saved)`. Until the
/// storage actor confirms, this actor handles no other message; the fsync itself waits on the
/// storage actor's thread, not on a scheduler thread.
void persist_durably(server_actor* self, std::vector<event_record> events,
                     std::function<void(bool saved)> done) {
  auto& st = self->state;
  st.rec.updated_ms = st.ctx->now_ms();
  self->request(st.ctx->storage, caf::infinite, persist_atom::value, st.rec, std::move(events),
                true)
      .await(
          [=](const std::vector<event_record>&) {
            report_presence(self);
            done(true);
          },
          [=](caf::error& err) {
            auto& s = self->state;
            spdlog::error("server {} ({}): cannot save its state: {}", s.rec.id, address_of(s.rec),
                          describe(err));
            done(false);
          });
}

/// Hands the TLS records produced so far to the broker as one write.
void flush_output(server_actor* self) {
  auto& st = self->state;
  if (st.outbuf.empty()) return;
  if (st.hdl) self->send(st.ctx->broker, write_atom::value, *st.hdl, std::move(st.outbuf));
  st.outbuf = {};
}

/// Encrypts `m`; the records go out with the next flush_output (at the end of the handler).
void send_message(server_actor* self, const wire::message& m) {
  auto& st = self->state;
  if (!st.tls) return;
  if (auto err = st.tls->send(m))
    spdlog::warn("server {}: cannot send {}: {}", st.rec.id, wire::to_string(wire::type_of(m)),
                 describe(err));
}

/// Asks the server for its inventory; `on_inventory` completes it.
void begin_collection(server_actor* self) {
  auto& st = self->state;
  st.conn = link::collecting;
  st.collect_sent = steady_clock::now();
  send_message(self, wire::collect{});
}

template <class Clock>
microseconds since(typename Clock::time_point t) {
  return duration_cast<microseconds>(Clock::now() - t);
}

void schedule_retry(server_actor* self, const std::string& why) {
  auto& st = self->state;
  auto delay = st.backoff.next_delay(st.ctx->random);
  auto attempt = st.backoff.failures();
  // The same failure again is logged at debug: 100,000 offline servers would otherwise write
  // hundreds of identical lines a second. `status` and `server show` keep the last error.
  auto level =
      attempt == 1 || why != st.rec.last_error ? spdlog::level::info : spdlog::level::debug;
  st.rec.last_error = why;
  st.rec.failed_attempts = attempt;
  spdlog::log(level, "server {} ({}): {}; retrying in {} ms (attempt {})", st.rec.id,
              address_of(st.rec), why, delay.count(), attempt);
  report_presence(self);
  self->delayed_send(self, delay, retry_atom::value, st.generation);
  rest_if_idle(self);
}

/// Closes the current connection (if any), forgets its TLS session and gives back a held slot.
void drop_connection(server_actor* self) {
  auto& st = self->state;
  flush_output(self);  // an alert the session wrote on its way out goes before the close
  if (st.hdl) self->send(st.ctx->broker, close_atom::value, *st.hdl);
  st.hdl.reset();
  st.tls.reset();
  st.inbox.clear();
  auto was = st.conn;
  st.conn = link::idle;
  if (holds_slot(was)) self->send(st.peers.admission, release_atom::value);
  ++st.generation;
  if (is_up(was) && st.connectivity.down())
    persist(self,
            {make_event(st.rec, event_type::connection_down, {{"reason", st.rec.last_error}})});
}

/// Asks the admission actor for a handshake slot; the connect starts when it is granted.
void start_connect(server_actor* self) {
  auto& st = self->state;
  if (st.conn != link::idle || st.role == nullptr) return;
  st.conn = link::awaiting_slot;
  self->send(st.peers.admission, slot_atom::value);
}

/// Moves to `next` with `events`, saved durably (a trust decision), and switches behavior. Once
/// saved, a state that does not contact its server closes the connection, then `then` runs.
void transition(server_actor* self, server_state next, std::vector<event_record> events,
                std::function<void()> then = nullptr) {
  enter(self, next);
  persist_durably(self, std::move(events), [=](bool) {
    if (self->state.role == nullptr) drop_connection(self);
    if (then) then();
    rest_if_idle(self);
  });
}

void erase_credentials(server_actor* self, const std::string& why) {
  auto& st = self->state;
  self->send(st.peers.custody, credentials_atom::value, remove_atom::value, st.rec.id, why);
}

/// The renewal actor found the pinned certificate in its warning window: one durable event per
/// certificate, remembered in the record.
void on_certificate_expiring(server_actor* self, const std::string& thumbprint_text,
                             const std::string& details) {
  auto& st = self->state;
  if (!st.rec.pinned || st.rec.pinned->to_string() != thumbprint_text) return;
  if (st.rec.expiry_warned && *st.rec.expiry_warned == *st.rec.pinned) return;
  st.rec.expiry_warned = st.rec.pinned;
  persist(self, {make_event(st.rec, event_type::server_certificate_expiring,
                            nlohmann::json::parse(details, nullptr, false))});
}

// -- connection failures -------------------------------------------------------------------------

void on_connection_failed(server_actor* self, std::string why) {
  auto& st = self->state;
  if (st.tls)
    if (auto refusal = validity_refusal(*st.tls, st.ctx->cfg, st.ctx->now_ms())) why = *refusal;
  if (tls_up(st.conn)) st.backoff.disconnected(st.ctx->now_ms());
  if (st.tls && st.tls->pin_rejection() && st.tls->peer_thumbprint() && st.role != nullptr) {
    auto presented = *st.tls->peer_thumbprint();
    record_validity(st.rec, *st.tls);
    auto* role = st.role;
    st.ctx->counters.handshake_failures++;
    st.rec.last_error = why;
    drop_connection(self);
    role->on_pin_rejected(self, presented);
    return;
  }
  if (st.conn != link::idle && !tls_up(st.conn)) st.ctx->counters.handshake_failures++;
  if (st.rec.state == server_state::registering) {
    // The answer to the credentials is lost with the connection: register again from the start.
    enter(self, server_state::pending_registration);
    persist(self, {});
  }
  st.rec.last_error = why;
  drop_connection(self);
  if (st.role != nullptr) schedule_retry(self, why);
}

/// A trusted server presented a certificate other than the pinned one: blocked until an admin
/// validates the new thumbprint.
void on_pinned_certificate_changed(server_actor* self, const thumbprint& presented) {
  auto& st = self->state;
  st.rec.presented = presented;
  auto pinned = st.rec.pinned ? st.rec.pinned->to_string() : std::string{};
  st.rec.last_error = "certificate changed: presented " + presented.to_string() + ", pinned " +
                      pinned + "; validate it with 'certfleet server trust " + st.rec.id +
                      " --thumbprint " + presented.to_string() + "'";
  spdlog::warn("server {} ({}): {}", st.rec.id, address_of(st.rec), st.rec.last_error);
  transition(self, server_state::certificate_changed,
             {make_event(st.rec, event_type::certificate_changed,
                         {{"old_thumbprint", pinned}, {"new_thumbprint", presented.to_string()}})},
             [=] { report_certificate(self); });
}

/// Registration: the certificate differs from the one given in advance. The credentials were never
/// sent, and they are destroyed: this server is never trusted automatically.
void on_expected_certificate_mismatch(server_actor* self, const thumbprint& presented) {
  auto& st = self->state;
  st.rec.presented = presented;
  auto expected = st.rec.expected ? st.rec.expected->to_string() : std::string{};
  st.rec.last_error = "certificate mismatch: presented " + presented.to_string() + ", expected " +
                      expected + "; credentials were not sent";
  spdlog::warn("server {} ({}): {}", st.rec.id, address_of(st.rec), st.rec.last_error);
  transition(self, server_state::certificate_mismatch,
             {make_event(st.rec, event_type::certificate_mismatch,
                         {{"expected_thumbprint", expected},
                          {"presented_thumbprint", presented.to_string()}})},
             [=] { erase_credentials(self, "certificate mismatch"); });
}

// -- protocol ------------------------------------------------------------------------------------

void on_registered(server_actor* self, const wire::registered& msg) {
  auto& st = self->state;
  auto presented = st.tls->peer_thumbprint();
  if (!presented || *presented != msg.server_thumbprint) {
    on_connection_failed(self, "the server reported thumbprint " +
                                   msg.server_thumbprint.to_string() +
                                   " but its TLS certificate has another; not trusting it");
    return;
  }
  st.ctx->counters.registrations++;
  st.rec.presented = *presented;
  record_validity(st.rec, *st.tls);
  st.rec.remote_id = peer_text(msg.server_id);
  st.rec.last_error.clear();
  st.backoff.healthy();
  st.rec.failed_attempts = 0;
  std::vector<event_record> events{make_event(
      st.rec, event_type::registered,
      {{"presented_thumbprint", presented->to_string()}, {"remote_id", st.rec.remote_id}})};
  auto policy = st.ctx->cfg.daemon.trust_policy;
  std::string by;
  if (st.rec.expected && *st.rec.expected == *presented)
    by = "expected";
  else if (st.rec.pinned && *st.rec.pinned == *presented)
    by = "pinned";  // registered again (reregistration_required): the validated pin still holds
  else if (policy == trust_policy::tofu)
    by = "tofu";
  server_state next = by.empty() ? server_state::awaiting_validation : server_state::trusted;
  if (by.empty()) {
    events.push_back(make_event(st.rec, event_type::validation_required,
                                {{"presented_thumbprint", presented->to_string()}}));
  } else {
    st.rec.pinned = *presented;
    st.rec.validated_by = by;
    events.push_back(make_event(st.rec, event_type::validated,
                                {{"thumbprint", presented->to_string()}, {"by", by}}));
  }
  // Entered before it is saved, so that the rest of this read expects no registration reply.
  enter(self, next);
  // The new state is durable before the credentials go: a crash in between is finished by the
  // custody actor at the next start (it deletes credentials of servers past registration).
  persist_durably(self, std::move(events), [=](bool saved) {
    auto& s = self->state;
    if (!saved) {
      enter(self, server_state::registering);
      on_connection_failed(self, "cannot save the registration");
      return;
    }
    // Test builds can die here, exactly as SIGKILL would: after the durable state change and
    // before the deletion of the credentials.
    CERTFLEET_FAILPOINT("server.registered.before_credential_deletion");
    // A legacy server logs in with them on every session: kept sealed while it stays legacy.
    if (!is_legacy(s.rec)) erase_credentials(self, "registered");
    report_certificate(self);
    // Registered with the certificate a renewal replaced meanwhile: it joins the rotation.
    if (!is_legacy(s.rec) && s.presenting &&
        *s.presenting != s.ctx->identities->current().sha256() && s.ctx->rotation)
      self->send(s.ctx->rotation, rotation_atom::value, add_atom::value, s.rec.id);
    if (next == server_state::trusted) {
      s.conn = link::online;
      persist(self, connection_up_events(self));
      begin_collection(self);
      flush_output(self);
    } else {
      drop_connection(self);
      rest_if_idle(self);
    }
  });
}

/// The server refused this manager: blocked in auth_failed, or retried (actors/refusal.hpp).
void on_denied(server_actor* self, const wire::denied& msg) {
  auto& st = self->state;
  auto outcome = interpret_denial(msg, st.rec.id);
  spdlog::warn("server {} ({}): {}", st.rec.id, address_of(st.rec), outcome.last_error);
  if (!outcome.blocks) {
    on_connection_failed(self, outcome.last_error);
    return;
  }
  st.rec.last_error = outcome.last_error;
  bool erase = outcome.erase_credentials;
  transition(
      self, server_state::auth_failed,
      {make_event(st.rec, event_type::auth_failed,
                  {{"reason", wire::to_string(msg.reason)}, {"detail", peer_text(msg.detail)}})},
      [=] {
        if (erase) erase_credentials(self, "registration denied");
      });
  // The agent closes after a refusal: that close must not replace the reason.
  drop_connection(self);
}

void on_inventory(server_actor* self, const wire::inventory& inv) {
  auto& st = self->state;
  nlohmann::json jobs = nlohmann::json::array();
  // The server's text is escaped: shown by `server show`, and a JSON dump of invalid UTF-8 throws.
  for (auto& j : inv.jobs)
    jobs.push_back({{"name", peer_text(j.name)},
                    {"type", peer_text(j.type)},
                    {"last_result", peer_text(j.last_result)},
                    {"last_run_ms", j.last_run_unix_ms},
                    {"size_bytes", j.size_bytes}});
  auto now = st.ctx->now_ms();
  nlohmann::json doc{{"collected_ms", now}, {"jobs", jobs}};
  self->send(st.ctx->storage, inventory_atom::value, st.rec.id, doc.dump());
  st.ctx->counters.collections++;
  st.ctx->counters.collection_latency.record(since<steady_clock>(st.collect_sent));
  st.rec.last_collection_ms = now;
  st.rec.last_seen_ms = now;
  st.conn = link::online;
  st.backoff.healthy();
  st.rec.failed_attempts = 0;
  persist(self, {});
  auto interval = milliseconds{int64_t{st.ctx->cfg.daemon.collect_interval_s} * 1000};
  auto delay = interval - interval / 10 + random_delay(st.ctx->random, interval / 5);
  self->delayed_send(self, delay, collect_atom::value, st.generation);
}

/// What every connected state does with a message: version check, errors and pings here, the
/// replies the state waits for in its role.
void on_message(server_actor* self, wire::message& m) {
  auto& st = self->state;
  if (auto* h = std::get_if<wire::hello>(&m)) {
    auto common = common_version(h->min_version, h->max_version);
    if (!common)
      on_connection_failed(self, "the server speaks protocol versions " +
                                     std::to_string(h->min_version) + ".." +
                                     std::to_string(h->max_version) + ", this manager speaks " +
                                     std::to_string(wire::min_protocol_version) + ".." +
                                     std::to_string(wire::protocol_version));
    else if (*common != offered_version(st.rec))
      on_version_change(self, *common);
  } else if (auto* e = std::get_if<wire::error_message>(&m)) {
    on_connection_failed(self, "the server reported an error: " + peer_text(e->text));
  } else if (auto* d = std::get_if<wire::denied>(&m)) {
    on_denied(self, *d);
  } else if (auto* p = std::get_if<wire::ping>(&m)) {
    send_message(self, wire::pong{p->nonce});
  } else if (st.role != nullptr) {
    st.role->on_reply(self, m);
  }
}

// -- connection roles ----------------------------------------------------------------------------

pin_check expected_pin(const server_record& rec) {
  auto expected = rec.expected;
  // A thumbprint given in advance was verified out of band: a match is as good as a pin, so the
  // self-signature check is skipped (docs/protocol.md, "Certificate verification").
  return [expected](const thumbprint& presented) -> pin_check::verdict {
    if (!expected) return peer_trust::unpinned;
    if (presented == *expected) return peer_trust::pinned;
    return make_error(ec::tls_failure,
                      "presented " + presented.to_string() + ", expected " + expected->to_string());
  };
}

pin_check pinned_pin(const server_record& rec) {
  auto pinned = *rec.pinned;
  return [pinned](const thumbprint& presented) -> pin_check::verdict {
    if (presented == pinned) return peer_trust::pinned;
    return make_error(ec::tls_failure,
                      "presented " + presented.to_string() + ", pinned " + pinned.to_string());
  };
}

/// The custody actor could not hand out the credentials for connection `gen`: gone (expired or
/// removed) leaves nothing to register or log in with; anything else is retried like a failed
/// connection.
void on_credentials_unavailable(server_actor* self, uint64_t gen, const caf::error& err) {
  auto& s = self->state;
  if (gen != s.generation) return;
  auto why = describe(err);
  s.rec.last_error = why;
  if (code_of(err) == ec::not_found) {
    transition(self, server_state::auth_failed,
               {make_event(s.rec, event_type::auth_failed, {{"reason", why}})});
    return;
  }
  on_connection_failed(self, why);
}

/// The connection is up and wants the sealed credentials: fetches them from the custody actor and
/// hands them to `use` if the connection is still the same one (they are forgotten after it).
template <class Use>
void with_credentials(server_actor* self, Use use) {
  auto& st = self->state;
  st.conn = link::established;
  auto gen = st.generation;
  self->request(st.peers.custody, seconds{10}, credentials_atom::value, st.rec.id)
      .then(
          [=](const std::string& account, const secret_bytes& password) {
            auto& s = self->state;
            if (gen == s.generation && s.tls) use(account, password);
          },
          [=](caf::error& err) { on_credentials_unavailable(self, gen, err); });
}

/// `pending_registration` -> `registering`. Not a trust decision: a restart turns `registering`
/// back into `pending_registration`, so this write needs no fsync of its own.
void enter_registering(server_actor* self, const std::string& account) {
  self->state.rec.account = account;
  enter(self, server_state::registering);
  persist(self, {});
}

/// Registration: sends the sealed credentials with the manager's thumbprint.
void send_credentials(server_actor* self) {
  with_credentials(self, [=](const std::string& account, const secret_bytes& password) {
    auto& s = self->state;
    enter_registering(self, account);
    send_message(self,
                 wire::register_request{account, password, *s.presenting, s.ctx->manager_subject});
    flush_output(self);
  });
}

/// Trusted and up: announce it and collect at once.
void go_online(server_actor* self) {
  auto& st = self->state;
  st.conn = link::online;
  st.rec.last_error.clear();
  if (record_validity(st.rec, *st.tls)) report_certificate(self);
  persist(self, connection_up_events(self));
  begin_collection(self);
  offer_rotation(self);
}

void ignore_reply(server_actor*, wire::message&) {}

/// Legacy servers (protocol version 1): every session logs in with the sealed credentials; the
/// first one also registers the server's thumbprint (pending_registration -> registering).
void send_legacy_login(server_actor* self) {
  with_credentials(self, [=](const std::string& account, const secret_bytes& password) {
    if (self->state.rec.state == server_state::pending_registration)
      enter_registering(self, account);
    send_message(self, wire::legacy_login{account, password});
    flush_output(self);
  });
}

void legacy_registration_reply(server_actor* self, wire::message& m) {
  if (auto* a = std::get_if<wire::legacy_accepted>(&m))
    on_registered(self, wire::registered{a->server_thumbprint, a->server_id});
  else if (auto* d = std::get_if<wire::denied>(&m))
    on_denied(self, *d);
}

void legacy_trusted_reply(server_actor* self, wire::message& m) {
  auto& st = self->state;
  if (auto* a = std::get_if<wire::legacy_accepted>(&m)) {
    auto presented = st.tls->peer_thumbprint();
    if (!presented || *presented != a->server_thumbprint) {
      on_connection_failed(self, "the server reported thumbprint " +
                                     a->server_thumbprint.to_string() +
                                     " but its TLS certificate has another; not trusting it");
      return;
    }
    go_online(self);
  } else if (auto* inv = std::get_if<wire::inventory>(&m)) {
    on_inventory(self, *inv);
  } else if (auto* d = std::get_if<wire::denied>(&m)) {
    on_denied(self, *d);
  }
}

/// The server's hello names another protocol version than this connection offered: a server of
/// an earlier release (it logs in with credentials), or one upgraded since (it registers with
/// certificates, and its credentials are then deleted). Reconnects speaking that version.
void on_version_change(server_actor* self, uint8_t version) {
  auto& st = self->state;
  auto was_legacy = is_legacy(st.rec);
  st.rec.auth = auth_for(version);
  spdlog::info("server {} ({}): speaks protocol version {}; {}", st.rec.id, address_of(st.rec),
               int{version},
               was_legacy ? "upgraded: registering it with certificates"
                          : "a server of an earlier release: authenticating with its credentials");
  st.rec.last_error.clear();
  st.backoff.reset();
  drop_connection(self);
  if (st.rec.state != server_state::trusted) {
    enter(self, server_state::pending_registration);
    persist(self, {});
    start_connect(self);
    return;
  }
  // A trusted server keeps its validated thumbprint as the expected one while it registers.
  st.rec.expected = st.rec.pinned;
  if (was_legacy) {
    transition(self, server_state::pending_registration, {}, [=] { start_connect(self); });
    return;
  }
  // Certificates to legacy: its credentials were deleted at registration.
  st.rec.last_error =
      "the server now speaks only the legacy protocol (version 1), which logs in "
      "with an account on every connection; give its credentials with "
      "'certfleet server credentials " +
      st.rec.id + " --account USER --password-stdin'";
  transition(self, server_state::auth_failed,
             {make_event(st.rec, event_type::auth_failed, {{"reason", st.rec.last_error}})});
}

void registration_reply(server_actor* self, wire::message& m) {
  if (auto* r = std::get_if<wire::registered>(&m)) on_registered(self, *r);
}

/// Sends what the manager certificate rotation owes this server's agent: the new certificate, or
/// once the rotation is over, the notice to drop the old one.
void offer_rotation(server_actor* self) {
  auto& st = self->state;
  // A legacy server never registered the manager certificate: there is nothing to rotate.
  if (is_legacy(st.rec)) return;
  if (auto next = st.ctx->identities->successor_for(st.rec.id)) {
    send_message(self, wire::rotate_manager_certificate{next->certificate_der()});
  } else if (auto old = st.ctx->identities->drop_owed(st.rec.id)) {
    // Only the successor may retire its predecessor: a session still made with the old
    // certificate is replaced at once by one with the new certificate, which then sends it.
    if (st.presenting && *st.presenting == st.ctx->identities->current().sha256()) {
      send_message(self, wire::retire_manager_certificate{*old});
      return;
    }
    st.rec.last_error = "switching to the renewed manager certificate";
    drop_connection(self);
    start_connect(self);
  }
}

/// The agent's answers to `offer_rotation`, for the rotation actor to record.
void rotation_reply(server_actor* self, wire::message& m) {
  auto& st = self->state;
  if (!st.ctx->rotation) return;
  if (auto* stored = std::get_if<wire::manager_certificate_stored>(&m)) {
    self->send(st.ctx->rotation, rotated_atom::value, st.rec.id, st.rec.host, st.rec.port,
               stored->stored);
  } else if (auto* retired = std::get_if<wire::manager_certificate_retired>(&m)) {
    self->send(st.ctx->rotation, retired_atom::value, st.rec.id, retired->retired);
  } else if (auto* refused = std::get_if<wire::rotation_refused>(&m)) {
    spdlog::warn("server {} ({}): the agent refused {}: {}", st.rec.id, address_of(st.rec),
                 wire::to_string(refused->request), refused->detail);
    self->send(st.ctx->rotation, rotation_atom::value, reject_atom::value, st.rec.id,
               refused->detail);
  }
}

void collection_reply(server_actor* self, wire::message& m) {
  if (auto* inv = std::get_if<wire::inventory>(&m))
    on_inventory(self, *inv);
  else
    rotation_reply(self, m);
}

// Before the credentials are sent, a registration answer would be a protocol violation by the
// server: it is ignored, as is anything but the answer while registering.
const link_role registration_role{expected_pin, send_credentials, ignore_reply,
                                  on_expected_certificate_mismatch};
const link_role registering_role{expected_pin, send_credentials, registration_reply,
                                 on_expected_certificate_mismatch};
const link_role trusted_role{pinned_pin, go_online, collection_reply,
                             on_pinned_certificate_changed};
const link_role legacy_registration_role{expected_pin, send_legacy_login, ignore_reply,
                                         on_expected_certificate_mismatch};
const link_role legacy_registering_role{expected_pin, send_legacy_login, legacy_registration_reply,
                                        on_expected_certificate_mismatch};
const link_role legacy_trusted_role{pinned_pin, send_legacy_login, legacy_trusted_reply,
                                    on_pinned_certificate_changed};

// -- liveness ------------------------------------------------------------------------------------

// clang-format off
//
//   TLS up --> quiet (nothing received) --T/3--> ping sent --until T quiet--> dead: closed,
//                ^                                   |                        connection_down,
//                +------ anything received ----------+                        reconnect (backoff)
//
//   T = daemon.peer_timeout_s; one liveness timer per connection, re-armed when it fires. Pings
//   only once online: during a registration or login the server's answer is awaited anyway.
//
// clang-format on

/// Something arrived from the server: the connection is alive.
void heard_from_server(server_actor* self) {
  auto& st = self->state;
  st.last_heard = self->clock().now();
  st.ping_unanswered = false;
}

/// Checks the current connection's liveness `delay` from now.
void arm_liveness(server_actor* self, caf::actor_clock::duration_type delay) {
  self->delayed_send(self, delay, liveness_atom::value, self->state.generation);
}

/// TLS is up: from now on, a server silent for peer_timeout_s is dead.
void watch_liveness(server_actor* self) {
  heard_from_server(self);
  arm_liveness(self, seconds{self->state.ctx->cfg.daemon.peer_timeout_s} / 3);
}

/// The liveness timer of connection `gen` fired: ping a quiet server, or give up on a silent one.
void check_liveness(server_actor* self, uint64_t gen) {
  auto& st = self->state;
  if (gen != st.generation || !tls_up(st.conn)) return;
  auto timeout =
      duration_cast<caf::actor_clock::duration_type>(seconds{st.ctx->cfg.daemon.peer_timeout_s});
  auto ping_after = timeout / 3;
  auto quiet = self->clock().now() - st.last_heard;
  if (quiet >= timeout) {
    on_connection_failed(self, "no data from the server for " +
                                   std::to_string(st.ctx->cfg.daemon.peer_timeout_s) +
                                   " s (daemon.peer_timeout_s): the connection was half-open or "
                                   "the server stopped; reconnecting");
    return;
  }
  if (quiet < ping_after) {
    arm_liveness(self, ping_after - quiet);
    return;
  }
  // Before it is online the server is answering a registration or login, and an agent that does
  // not know this manager yet refuses anything else (docs/protocol.md, "Liveness").
  if (!st.ping_unanswered && is_up(st.conn)) {
    st.ping_unanswered = true;
    send_message(self, wire::ping{st.generation});
    flush_output(self);
  }
  arm_liveness(self, std::min(ping_after, timeout - quiet));
}

// -- the connection ------------------------------------------------------------------------------

/// TLS is up: say hello and do what this state connected for.
void on_activated(server_actor* self) {
  auto& st = self->state;
  st.conn = link::established;
  self->send(st.peers.admission, release_atom::value);
  // Not yet a reason to reset the backoff: the connection must prove healthy first.
  st.backoff.connected(st.ctx->now_ms());
  st.ctx->counters.handshakes++;
  st.ctx->counters.handshake_latency.record(since<steady_clock>(st.handshake_started));
  if (auto info = st.tls->handshake(); info && info->resumed) st.ctx->counters.resumed_handshakes++;
  st.rec.last_seen_ms = st.ctx->now_ms();
  watch_liveness(self);
  auto version = offered_version(st.rec);
  send_message(self, wire::hello{version, version, st.ctx->manager_subject});
  st.role->on_up(self);
}

void pump_tls(server_actor* self, const caf::error& err) {
  auto& st = self->state;
  auto gen = st.generation;
  if (st.tls && st.conn == link::handshaking && st.tls->is_active()) on_activated(self);
  // Indexed: on_message may drop the connection, which clears the inbox and bumps the generation.
  for (size_t i = 0; gen == st.generation && i < st.inbox.size(); ++i) {
    auto m = std::move(st.inbox[i]);
    on_message(self, m);
  }
  if (gen != st.generation) return;
  st.inbox.clear();
  if (err) {
    on_connection_failed(self, describe(err));
  } else if (st.tls && st.tls->is_closed()) {
    on_connection_failed(self, "the server closed the TLS session");
  } else {
    flush_output(self);
  }
}

void create_session(server_actor* self, caf::io::connection_handle hdl) {
  auto& st = self->state;
  st.hdl = hdl;
  tls_outputs out;
  out.ciphertext = [self](const uint8_t* data, size_t size) {
    auto& buf = self->state.outbuf;
    buf.insert(buf.end(), reinterpret_cast<const char*>(data),
               reinterpret_cast<const char*>(data) + size);
  };
  out.message = [self](wire::message&& m) { self->state.inbox.push_back(std::move(m)); };
  tls_options opts;
  opts.max_frame_size = static_cast<size_t>(st.ctx->cfg.daemon.max_frame_bytes);
  opts.min_version = opts.max_version = offered_version(st.rec);
  opts.clock = [ctx = st.ctx.get()] {
    return std::chrono::system_clock::time_point{milliseconds{ctx->now_ms()}};
  };
  opts.validity_tolerance = seconds{st.ctx->cfg.daemon.clock_skew_tolerance_s};
  auto local = st.ctx->identities->for_server(st.rec.id);
  // A session resumed from one made with another manager certificate would present that one.
  if (st.presenting && *st.presenting != local.sha256())
    forget_client_session(*st.ctx->sessions, st.rec.host, st.rec.port);
  st.presenting = local.sha256();
  st.tls = std::make_unique<tls_client_session>(local, st.role->pin(st.rec), st.ctx->sessions,
                                                st.rec.host, st.rec.port, std::move(out), opts);
}

void on_slot(server_actor* self) {
  auto& st = self->state;
  if (st.conn != link::awaiting_slot || st.role == nullptr) {
    self->send(st.peers.admission, release_atom::value);  // no longer wanted
    return;
  }
  st.conn = link::connecting;
  auto me = caf::actor_cast<caf::actor>(self);
  auto gen = st.generation;
  st.handshake_started = steady_clock::now();
  // The handshake deadline counts from the start of the connect (config/settings.hpp).
  self->delayed_send(self, milliseconds{st.ctx->cfg.daemon.handshake_timeout_ms},
                     deadline_atom::value, gen);
  st.ctx->connect_to(st.rec.host, st.rec.port, milliseconds{st.ctx->cfg.daemon.connect_timeout_ms},
                     [me, gen](int fd, const caf::error& err) {
                       if (fd >= 0)
                         caf::anon_send(me, connected_atom::value, gen, fd);
                       else
                         caf::anon_send(me, connect_failed_atom::value, gen, describe(err));
                     });
}

// -- admin requests ------------------------------------------------------------------------------

/// What this actor knows: the record and the connection (`show` adds what is stored).
server_view view_of(server_actor* self) {
  auto& st = self->state;
  server_view v;
  v.record = st.rec;
  v.connected = is_up(st.conn);
  return v;
}

/// The storage actor adds what is stored (inventory, retained credentials) to the live view and
/// answers the requester, so no read of the store runs on this thread.
caf::result<server_view> show(server_actor* self) {
  self->delegate(self->state.ctx->storage, show_atom::value, view_of(self));
  return caf::delegated<server_view>{};
}

/// The view after new credentials were stored by the custody actor.
server_view view_with_credentials(server_actor* self) {
  auto v = view_of(self);
  v.credentials_retained = true;
  return v;
}

/// An admin validated exactly the presented thumbprint: pin it and connect.
caf::result<server_view> trust_presented(server_actor* self, const thumbprint& t,
                                         const std::string& by) {
  auto& st = self->state;
  if (!st.rec.presented)
    return make_error(ec::invalid_state, "server " + st.rec.id + " is " + to_string(st.rec.state) +
                                             " and has not presented a certificate yet");
  if (*st.rec.presented != t)
    return make_error(ec::invalid_argument,
                      "server " + st.rec.id + " presented " + st.rec.presented->to_string() +
                          ", not " + t.to_string() +
                          "; verify the presented thumbprint out of band and quote it exactly");
  auto previous = st.rec.pinned ? st.rec.pinned->to_string() : std::string{};
  st.rec.pinned = t;
  st.rec.validated_by = by;
  st.rec.last_error.clear();
  st.backoff.reset();
  auto promise = self->make_response_promise<server_view>();
  transition(self, server_state::trusted,
             {make_event(st.rec, event_type::validated,
                         {{"thumbprint", t.to_string()}, {"by", by}, {"previous", previous}})},
             [=]() mutable {
               report_certificate(self);
               start_connect(self);
               promise.deliver(view_of(self));
             });
  return promise;
}

/// An admin rejected the presented thumbprint: the server stays (or becomes) blocked in `next`.
caf::result<server_view> reject_presented(server_actor* self, server_state next) {
  auto& st = self->state;
  auto presented = st.rec.presented ? st.rec.presented->to_string() : std::string{};
  st.rec.last_error = "thumbprint " + presented + " rejected by an admin";
  auto promise = self->make_response_promise<server_view>();
  transition(self, next, {make_event(st.rec, event_type::rejected, {{"thumbprint", presented}})},
             [=]() mutable { promise.deliver(view_of(self)); });
  return promise;
}

caf::error cannot_reject(server_actor* self) {
  auto& st = self->state;
  return make_error(ec::invalid_state, "server " + st.rec.id + " is " + to_string(st.rec.state) +
                                           "; only a presented thumbprint awaiting validation "
                                           "can be rejected");
}

/// The custody actor destroyed the retained credentials (credential_max_age_s) while this server
/// still needed them to register.
void credentials_expired(server_actor* self, const std::string& why) {
  auto& st = self->state;
  st.rec.last_error = why;
  transition(self, server_state::auth_failed,
             {make_event(st.rec, event_type::auth_failed, {{"reason", why}})});
}

/// The old manager certificate expired before this server's agent received its successor: the
/// agent would refuse every certificate the manager still has, so only a registration with
/// credentials brings it back (`server credentials ID`).
void reregistration_required(server_actor* self) {
  auto& st = self->state;
  if (st.rec.state == server_state::reregistration_required ||
      st.rec.state == server_state::removed)
    return;
  st.rec.last_error =
      "the old manager certificate expired before this server received its successor; register "
      "it again with 'certfleet server credentials " +
      st.rec.id + " --account USER --password-stdin'";
  spdlog::warn("server {} ({}): {}", st.rec.id, address_of(st.rec), st.rec.last_error);
  transition(self, server_state::reregistration_required,
             {make_event(st.rec, event_type::reregistration_required,
                         {{"previous_state", to_string(st.rec.state)}})});
}

/// certificate_mismatch: the credentials were never sent, so the server has not registered this
/// manager and would refuse its certificate. Trusting the presented thumbprint alone would leave a
/// trusted server that can never connect; the way on is to register again.
caf::error cannot_trust_unregistered(server_actor* self) {
  auto& st = self->state;
  auto presented = st.rec.presented ? st.rec.presented->to_string() : std::string{"-"};
  auto expected = st.rec.expected ? st.rec.expected->to_string() : std::string{"-"};
  return make_error(ec::invalid_state,
                    "server " + st.rec.id + " presented " + presented +
                        " instead of the expected " + expected +
                        ", so its credentials were never sent and it has not registered this "
                        "manager: trusted now, it could never connect. Register it again with "
                        "'certfleet server credentials " +
                        st.rec.id +
                        " --account USER --password-stdin'; then validate the thumbprint it "
                        "presents with 'certfleet server trust " +
                        st.rec.id + " --thumbprint " + presented + "'");
}

/// The custody actor sealed and stored new credentials: register again, at once.
caf::result<server_view> register_again(server_actor* self, const std::string& account) {
  auto& st = self->state;
  // After a mismatch, the thumbprint given in advance proved wrong (or the server's certificate
  // changed since): the new registration's thumbprint is validated like one never given.
  if (st.rec.state == server_state::certificate_mismatch) st.rec.expected.reset();
  st.rec.account = account;
  st.rec.last_error.clear();
  st.backoff.reset();
  if (st.rec.state == server_state::pending_registration) {
    start_connect(self);
    return view_with_credentials(self);
  }
  auto promise = self->make_response_promise<server_view>();
  transition(self, server_state::pending_registration, {}, [=]() mutable {
    start_connect(self);
    promise.deliver(view_with_credentials(self));
  });
  return promise;
}

// -- behaviors -----------------------------------------------------------------------------------

/// Handled the same way in every state. The connection messages here are the leftovers of an
/// abandoned attempt (the connecting states handle live ones first): a late socket is closed and a
/// late slot given back.
caf::message_handler shared_handlers(server_actor* self) {
  return {
      [=](show_atom) { return show(self); },
      [=](trust_atom, const thumbprint& t, const std::string& by) {
        return trust_presented(self, t, by);
      },
      [=](reject_atom) -> caf::result<server_view> { return cannot_reject(self); },
      [=](remove_atom) -> caf::result<bool> {
        auto& st = self->state;
        drop_connection(self);
        auto promise = self->make_response_promise<bool>();
        std::vector<event_record> events{make_event(st.rec, event_type::server_removed, {})};
        self->request(st.ctx->storage, caf::infinite, remove_atom::value, st.rec.id,
                      std::move(events))
            .await(
                [=](const std::vector<event_record>&) mutable {
                  self->state.rec.state = server_state::removed;
                  report_certificate(self);
                  promise.deliver(true);
                  self->quit();
                },
                [=](caf::error& err) mutable { promise.deliver(std::move(err)); });
        return promise;
      },
      [=](credentials_atom, const std::string& account) -> caf::result<server_view> {
        return register_again(self, account);
      },
      [=](credentials_atom, remove_atom, const std::string&) {
        // Past registration: the credentials were not needed any more.
      },
      [=](expiring_atom, const std::string& t, const std::string& details) {
        on_certificate_expiring(self, t, details);
      },
      [=](slot_atom) { self->send(self->state.peers.admission, release_atom::value); },
      [=](connected_atom, uint64_t, int fd) { ::close(fd); },
      [=](connect_failed_atom, uint64_t, const std::string&) {},
      [=](adopted_atom, caf::io::connection_handle hdl) {
        self->send(self->state.ctx->broker, close_atom::value, hdl);
      },
      [=](bytes_atom, caf::io::connection_handle, const std::vector<char>&) {},
      [=](disconnected_atom, caf::io::connection_handle) {},
      [=](deadline_atom, uint64_t) {},
      [=](liveness_atom, uint64_t) {},
      [=](retry_atom, uint64_t) {},
      [=](collect_atom, uint64_t) {},
      [=](rotation_atom) {},
      [=](reregister_atom) { reregistration_required(self); },
  };
}

/// The connection, in the states that contact their server.
caf::message_handler link_handlers(server_actor* self) {
  return {
      [=](slot_atom) { on_slot(self); },
      [=](connected_atom, uint64_t gen, int fd) {
        auto& st = self->state;
        if (gen != st.generation || st.conn != link::connecting) {
          ::close(fd);
          return;
        }
        apply_peer_socket_options(fd, st.ctx->cfg.daemon);
        self->send(st.ctx->broker, adopt_atom::value, fd, caf::actor_cast<caf::actor>(self));
      },
      [=](connect_failed_atom, uint64_t gen, const std::string& why) {
        if (gen == self->state.generation) on_connection_failed(self, why);
      },
      [=](adopted_atom, caf::io::connection_handle hdl) {
        auto& st = self->state;
        if (st.conn != link::connecting || st.hdl) {
          self->send(st.ctx->broker, close_atom::value, hdl);
          return;
        }
        st.conn = link::handshaking;
        create_session(self, hdl);
        pump_tls(self, {});
      },
      [=](bytes_atom, caf::io::connection_handle hdl, const std::vector<char>& buf) {
        auto& st = self->state;
        if (!st.hdl || *st.hdl != hdl || !st.tls) return;
        heard_from_server(self);
        auto err = st.tls->received(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
        pump_tls(self, err);
      },
      [=](disconnected_atom, caf::io::connection_handle hdl) {
        auto& st = self->state;
        if (!st.hdl || *st.hdl != hdl) return;
        st.hdl.reset();  // the broker has already forgotten it
        on_connection_failed(self, tls_up(st.conn) ? "connection lost"
                                                   : "connection closed during the TLS handshake");
      },
      [=](deadline_atom, uint64_t gen) {
        auto& st = self->state;
        if (gen == st.generation && holds_slot(st.conn))
          on_connection_failed(self, "TLS handshake did not complete within " +
                                         std::to_string(st.ctx->cfg.daemon.handshake_timeout_ms) +
                                         " ms");
      },
      [=](retry_atom, uint64_t gen) {
        if (gen == self->state.generation) start_connect(self);
      },
      [=](liveness_atom, uint64_t gen) { check_liveness(self, gen); },
  };
}

/// Credentials retained, waiting to reach the server: connect, and send them once TLS is up.
caf::behavior pending_registration(server_actor* self) {
  return caf::message_handler{
      [=](credentials_atom, const std::string& account) -> caf::result<server_view> {
        return register_again(self, account);
      },
      [=](credentials_atom, remove_atom, const std::string& why) {
        credentials_expired(self, why);
      },
  }
      .or_else(link_handlers(self))
      .or_else(shared_handlers(self));
}

/// Credentials sent, waiting for `registered` or `denied` (registering_role).
caf::behavior registering(server_actor* self) {
  return caf::message_handler{
      [=](credentials_atom, remove_atom, const std::string& why) {
        credentials_expired(self, why);
      },
  }
      .or_else(link_handlers(self))
      .or_else(shared_handlers(self));
}

/// Registered, thumbprint presented, not connected: an admin trusts or rejects it.
caf::behavior awaiting_validation(server_actor* self) {
  return caf::message_handler{
      [=](reject_atom) { return reject_presented(self, server_state::certificate_mismatch); },
  }
      .or_else(shared_handlers(self));
}

/// Pinned: mutual TLS, and a collection every collect_interval while up.
caf::behavior trusted(server_actor* self) {
  return caf::message_handler{
      [=](trust_atom, const thumbprint& t, const std::string& by) -> caf::result<server_view> {
        auto& st = self->state;
        if (st.rec.pinned && *st.rec.pinned == t) return view_of(self);
        return trust_presented(self, t, by);
      },
      [=](collect_atom, uint64_t gen) {
        auto& st = self->state;
        if (gen != st.generation || st.conn != link::online) return;
        begin_collection(self);
        flush_output(self);
      },
      [=](rotation_atom) {
        if (!is_up(self->state.conn)) return;
        offer_rotation(self);
        flush_output(self);
      },
  }
      .or_else(link_handlers(self))
      .or_else(shared_handlers(self));
}

/// The presented thumbprint differs from the one given in advance and the credentials were never
/// sent: not contacted until an admin gives credentials again (cannot_trust_unregistered).
caf::behavior mismatched(server_actor* self) {
  return caf::message_handler{
      [=](trust_atom, const thumbprint&, const std::string&) -> caf::result<server_view> {
        return cannot_trust_unregistered(self);
      },
  }
      .or_else(shared_handlers(self));
}

/// certificate_changed and auth_failed: the server is not contacted until an admin acts (trust
/// the presented thumbprint, or give new credentials).
caf::behavior blocked(server_actor* self) {
  return caf::message_handler{
      [=](reject_atom) -> caf::result<server_view> {
        // Rejecting a changed certificate confirms the block; auth_failed has nothing pending.
        if (self->state.rec.state != server_state::certificate_changed) return cannot_reject(self);
        return reject_presented(self, server_state::certificate_changed);
      },
  }
      .or_else(shared_handlers(self));
}

// -- rest ----------------------------------------------------------------------------------------

/// What a resting server holds instead of its state's behavior: one handler for a message nobody
/// sends. It captures nothing, so every resting actor shares this one; CAF passes each message it
/// does not match to the actor's default handler, `wake` (docs/platform.md, "Idle actors").
const caf::behavior& resting() {
  using rest_atom = caf::atom_constant<caf::atom("rest")>;
  static const caf::behavior shared{[](rest_atom) {}};
  return shared;
}

/// The default handler of a resting server: rebuilds its state's behavior, hands it the message
/// exactly as CAF would have (same result visitor, so answers and delegations are unchanged), and
/// rests again if the message left the server idle.
caf::result<caf::message> wake(caf::scheduled_actor* ptr, caf::message_view& msg) {
  auto* self = static_cast<server_actor*>(ptr);
  // A copy: the handler may switch behavior again while it runs.
  auto bhvr = behavior_of(self);
  self->set_default_handler(caf::print_and_drop);
  self->become(bhvr);
  caf::detail::default_invoke_result_visitor<caf::scheduled_actor> visitor{self};
  auto matched = bhvr(visitor, msg.content());
  rest_if_idle(self);
  switch (matched) {
    case caf::match_case::no_match:
      return caf::print_and_drop(self, msg);
    case caf::match_case::skip:
      return caf::skip;
    default:
      return caf::delegated<caf::message>{};  // answered (or not) by the visitor
  }
}

/// Whether a server with connection `l` can rest: no connection, or only waiting for a handshake
/// slot (at start, most of a large fleet waits for one).
bool can_rest(link l) {
  return l == link::idle || l == link::awaiting_slot;
}

/// An idle server (no connection: waiting for its retry or its handshake slot, or for an admin in
/// a state that does not connect) gives up its handlers until its next message. Its state,
/// connection role and timers stay; only the behavior object goes, which is most of an idle
/// actor's memory besides CAF's own.
void rest_if_idle(server_actor* self) {
  if (!can_rest(self->state.conn)) return;
  self->become(resting());
  self->set_default_handler(wake);
}

caf::behavior server_main(server_actor* self, context_ptr ctx, server_peers peers,
                          server_record rec) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.peers = std::move(peers);
  st.rec = std::move(rec);
  const auto& d = st.ctx->cfg.daemon;
  st.backoff = reconnect_backoff{backoff_policy{milliseconds{d.backoff_initial_ms},
                                                milliseconds{d.backoff_max_ms},
                                                seconds{d.backoff_reset_after_s}}};
  // The answer to credentials sent before a restart is lost: register again from the start.
  auto initial =
      st.rec.state == server_state::registering ? server_state::pending_registration : st.rec.state;
  set_state(self, initial);
  report_presence(self);
  if (watch_of(st.rec)) report_certificate(self);
  start_connect(self);
  if (!can_rest(st.conn)) return behavior_of(self);
  self->set_default_handler(wake);
  return resting();
}

}  // namespace

caf::actor spawn_server_actor(caf::actor_system& sys, context_ptr ctx, server_peers peers,
                              server_record rec) {
  return sys.spawn(server_main, std::move(ctx), std::move(peers), std::move(rec));
}

}  // namespace certfleet
