#include "actors/server_actor.hpp"

#include <unistd.h>

#include <vector>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/connection_handle.hpp>
#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"
#include "actors/backoff.hpp"
#include "actors/events.hpp"
#include "actors/refusal.hpp"
#include "common/failpoint.hpp"
#include "common/peer_text.hpp"

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
  // The current connection attempt; messages about older attempts are ignored.
  uint64_t generation = 0;
  std::optional<caf::io::connection_handle> hdl;
  std::unique_ptr<tls_client_session> tls;
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
extern const link_role registration_role;
extern const link_role registering_role;
extern const link_role trusted_role;

std::string address_of(const server_record& r) {
  return r.host + ":" + std::to_string(r.port);
}

/// The behavior of state `s`; also sets the connection role that goes with it.
caf::behavior behavior_of(server_actor* self, server_state s) {
  auto& st = self->state;
  st.rec.state = s;
  switch (s) {
    case server_state::pending_registration:
      st.role = &registration_role;
      return pending_registration(self);
    case server_state::registering:
      st.role = &registering_role;
      return registering(self);
    case server_state::awaiting_validation:
      st.role = nullptr;
      return awaiting_validation(self);
    case server_state::trusted:
      st.role = &trusted_role;
      return trusted(self);
    case server_state::certificate_changed:
    case server_state::certificate_mismatch:
    case server_state::auth_failed:
    case server_state::removed:
      break;
  }
  st.role = nullptr;
  return blocked(self);
}

/// Switches to state `s`; persisting it is the caller's job.
void enter(server_actor* self, server_state s) {
  self->become(behavior_of(self, s));
}

/// Tells the registry how this server stands, for `list` and `status`.
void report_presence(server_actor* self) {
  auto& st = self->state;
  self->send(st.peers.registry, state_atom::value,
             server_presence{st.rec.id, st.rec.state, is_up(st.conn), st.rec.last_error});
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
  return {make_event(st.rec, "connection_up", details)};
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
    persist(self, {make_event(st.rec, "connection_down", {{"reason", st.rec.last_error}})});
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
  });
}

void erase_credentials(server_actor* self, const std::string& why) {
  auto& st = self->state;
  self->send(st.peers.custody, credentials_atom::value, remove_atom::value, st.rec.id, why);
}

// -- connection failures -------------------------------------------------------------------------

void on_connection_failed(server_actor* self, const std::string& why) {
  auto& st = self->state;
  if (tls_up(st.conn)) st.backoff.disconnected(st.ctx->now_ms());
  if (st.tls && st.tls->pin_rejection() && st.tls->peer_thumbprint() && st.role != nullptr) {
    auto presented = *st.tls->peer_thumbprint();
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
             {make_event(st.rec, "certificate_changed",
                         {{"old_thumbprint", pinned}, {"new_thumbprint", presented.to_string()}})});
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
             {make_event(st.rec, "certificate_mismatch",
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
  st.rec.remote_id = peer_text(msg.server_id);
  st.rec.last_error.clear();
  st.backoff.healthy();
  st.rec.failed_attempts = 0;
  std::vector<event_record> events{make_event(
      st.rec, "registered",
      {{"presented_thumbprint", presented->to_string()}, {"remote_id", st.rec.remote_id}})};
  auto policy = st.ctx->cfg.daemon.trust_policy;
  std::string by;
  if (st.rec.expected && *st.rec.expected == *presented)
    by = "expected";
  else if (policy == "tofu")
    by = "tofu";
  server_state next = by.empty() ? server_state::awaiting_validation : server_state::trusted;
  if (by.empty()) {
    events.push_back(make_event(st.rec, "validation_required",
                                {{"presented_thumbprint", presented->to_string()}}));
  } else {
    st.rec.pinned = *presented;
    st.rec.validated_by = by;
    events.push_back(
        make_event(st.rec, "validated", {{"thumbprint", presented->to_string()}, {"by", by}}));
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
    erase_credentials(self, "registered");
    if (next == server_state::trusted) {
      s.conn = link::online;
      persist(self, connection_up_events(self));
      begin_collection(self);
      flush_output(self);
    } else {
      drop_connection(self);
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
      {make_event(st.rec, "auth_failed",
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
    if (h->min_version > wire::protocol_version || h->max_version < wire::protocol_version)
      on_connection_failed(self, "the server speaks protocol versions " +
                                     std::to_string(h->min_version) + ".." +
                                     std::to_string(h->max_version) + ", this manager speaks " +
                                     std::to_string(wire::protocol_version));
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

/// Registration: fetch the sealed credentials from the custody actor, send them, and forget them.
void send_credentials(server_actor* self) {
  auto& st = self->state;
  st.conn = link::established;
  auto gen = st.generation;
  self->request(st.peers.custody, seconds{10}, credentials_atom::value, st.rec.id)
      .then(
          [=](const std::string& account, const secret_bytes& password) {
            auto& s = self->state;
            if (gen != s.generation || !s.tls) return;
            s.rec.account = account;
            enter(self, server_state::registering);
            // Not a trust decision: a restart turns `registering` back into
            // `pending_registration`, so this write needs no fsync of its own.
            persist(self, {});
            wire::register_request req{account, password, s.ctx->manager_identity.sha256(),
                                       s.ctx->manager_subject};
            send_message(self, req);
            flush_output(self);
          },
          [=](caf::error& err) {
            auto& s = self->state;
            if (gen != s.generation) return;
            auto why = describe(err);
            s.rec.last_error = why;
            if (code_of(err) == ec::not_found) {
              // Credentials are gone (expired or removed): nothing left to register with.
              transition(self, server_state::auth_failed,
                         {make_event(s.rec, "auth_failed", {{"reason", why}})});
              return;
            }
            on_connection_failed(self, why);
          });
}

/// Trusted and up: announce it and collect at once.
void go_online(server_actor* self) {
  auto& st = self->state;
  st.conn = link::online;
  st.rec.last_error.clear();
  persist(self, connection_up_events(self));
  begin_collection(self);
}

void ignore_reply(server_actor*, wire::message&) {}

void registration_reply(server_actor* self, wire::message& m) {
  if (auto* r = std::get_if<wire::registered>(&m)) on_registered(self, *r);
}

void collection_reply(server_actor* self, wire::message& m) {
  if (auto* inv = std::get_if<wire::inventory>(&m)) on_inventory(self, *inv);
}

// Before the credentials are sent, a registration answer would be a protocol violation by the
// server: it is ignored, as is anything but the answer while registering.
const link_role registration_role{expected_pin, send_credentials, ignore_reply,
                                  on_expected_certificate_mismatch};
const link_role registering_role{expected_pin, send_credentials, registration_reply,
                                 on_expected_certificate_mismatch};
const link_role trusted_role{pinned_pin, go_online, collection_reply,
                             on_pinned_certificate_changed};

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
  send_message(
      self, wire::hello{wire::protocol_version, wire::protocol_version, st.ctx->manager_subject});
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
  st.tls = std::make_unique<tls_client_session>(st.ctx->manager_identity, st.role->pin(st.rec),
                                                st.ctx->sessions, st.rec.host, st.rec.port,
                                                std::move(out), opts);
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

server_view view_of(server_actor* self) {
  auto& st = self->state;
  server_view v;
  v.record = st.rec;
  v.connected = is_up(st.conn);
  if (auto inv = st.ctx->store->get_inventory(st.rec.id); inv && *inv) v.inventory_json = **inv;
  if (auto cred = st.ctx->store->get_credential(st.rec.id); cred && *cred)
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
             {make_event(st.rec, "validated",
                         {{"thumbprint", t.to_string()}, {"by", by}, {"previous", previous}})},
             [=]() mutable {
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
  transition(self, next, {make_event(st.rec, "rejected", {{"thumbprint", presented}})},
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
             {make_event(st.rec, "auth_failed", {{"reason", why}})});
}

/// The custody actor sealed and stored new credentials: register again, at once.
caf::result<server_view> register_again(server_actor* self, const std::string& account) {
  auto& st = self->state;
  st.rec.account = account;
  st.rec.last_error.clear();
  st.backoff.reset();
  if (st.rec.state == server_state::pending_registration) {
    start_connect(self);
    return view_of(self);
  }
  auto promise = self->make_response_promise<server_view>();
  transition(self, server_state::pending_registration, {}, [=]() mutable {
    start_connect(self);
    promise.deliver(view_of(self));
  });
  return promise;
}

// -- behaviors -----------------------------------------------------------------------------------

/// Handled the same way in every state. The connection messages here are the leftovers of an
/// abandoned attempt (the connecting states handle live ones first): a late socket is closed and a
/// late slot given back.
caf::message_handler shared_handlers(server_actor* self) {
  return {
      [=](show_atom) -> server_view { return view_of(self); },
      [=](trust_atom, const thumbprint& t, const std::string& by) {
        return trust_presented(self, t, by);
      },
      [=](reject_atom) -> caf::result<server_view> { return cannot_reject(self); },
      [=](remove_atom) -> caf::result<bool> {
        auto& st = self->state;
        drop_connection(self);
        auto promise = self->make_response_promise<bool>();
        std::vector<event_record> events{make_event(st.rec, "server_removed", {})};
        self->request(st.ctx->storage, caf::infinite, remove_atom::value, st.rec.id,
                      std::move(events))
            .await(
                [=](const std::vector<event_record>&) mutable {
                  self->state.rec.state = server_state::removed;
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
      [=](slot_atom) { self->send(self->state.peers.admission, release_atom::value); },
      [=](connected_atom, uint64_t, int fd) { ::close(fd); },
      [=](connect_failed_atom, uint64_t, const std::string&) {},
      [=](adopted_atom, caf::io::connection_handle hdl) {
        self->send(self->state.ctx->broker, close_atom::value, hdl);
      },
      [=](bytes_atom, caf::io::connection_handle, const std::vector<char>&) {},
      [=](disconnected_atom, caf::io::connection_handle) {},
      [=](deadline_atom, uint64_t) {},
      [=](retry_atom, uint64_t) {},
      [=](collect_atom, uint64_t) {},
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
  }
      .or_else(link_handlers(self))
      .or_else(shared_handlers(self));
}

/// certificate_changed, certificate_mismatch and auth_failed: the server is not contacted until
/// an admin acts (trust the presented thumbprint, or give new credentials).
caf::behavior blocked(server_actor* self) {
  return caf::message_handler{
      [=](reject_atom) -> caf::result<server_view> {
        // Rejecting a changed certificate confirms the block; the others have nothing pending.
        if (self->state.rec.state != server_state::certificate_changed) return cannot_reject(self);
        return reject_presented(self, server_state::certificate_changed);
      },
  }
      .or_else(shared_handlers(self));
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
  auto bhvr = behavior_of(self, initial);
  report_presence(self);
  start_connect(self);
  return bhvr;
}

}  // namespace

caf::actor spawn_server_actor(caf::actor_system& sys, context_ptr ctx, server_peers peers,
                              server_record rec) {
  return sys.spawn(server_main, std::move(ctx), std::move(peers), std::move(rec));
}

}  // namespace certfleet
