#include "actors/server_actor.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include <vector>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/connection_handle.hpp>
#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"
#include "actors/events.hpp"

namespace certfleet {
namespace {

using namespace std::chrono;

struct server_data {
  context_ptr ctx;
  caf::actor supervisor;
  server_record rec;
  // The current connection attempt; messages about older attempts are ignored.
  uint64_t generation = 0;
  bool holding_slot = false;
  bool connecting = false;
  std::optional<caf::io::connection_handle> hdl;
  std::unique_ptr<tls_client_session> tls;
  // TLS records produced while handling one message, written to the broker as one write: a
  // handshake flight is 5 records, and one message and one send() each cost more than the crypto
  // of small records (flush_output).
  std::vector<char> outbuf;
  // A vector, not a deque: an empty std::deque allocates ~600 bytes, and most of the fleet sits
  // idle with no connection at all (100,000 servers: ~60 MiB).
  std::vector<wire::message> inbox;
  bool activated = false;
  bool hello_seen = false;
  bool collecting = false;
  bool connected = false;  // TLS up and hello exchanged
  uint32_t attempt = 0;
  // For the latency histograms in `status`.
  steady_clock::time_point handshake_started;
  steady_clock::time_point collect_sent;
  static inline const char* name = "certfleet.server";
};

using server_actor = caf::stateful_actor<server_data>;

caf::behavior behavior_for(server_actor* self);
void start_connect(server_actor* self);
void drop_connection(server_actor* self);

std::string address_of(const server_record& r) {
  return r.host + ":" + std::to_string(r.port);
}

bool wants_connection(server_state s) {
  return s == server_state::pending_registration || s == server_state::registering ||
         s == server_state::trusted;
}

/// Tells the supervisor how this server stands, for `list` and `status`.
void report_presence(server_actor* self) {
  auto& st = self->state;
  self->send(st.supervisor, state_atom::value,
             server_presence{st.rec.id, st.rec.state, st.connected, st.rec.last_error});
}

/// Persists the record with `events`; publishes the events once durable. False on failure (the
/// caller keeps its current state and retries later).
bool persist(server_actor* self, std::vector<event_record> events, bool sync) {
  auto& st = self->state;
  st.rec.updated_ms = st.ctx->now_ms();
  auto stored = st.ctx->store->put_server(st.rec, std::move(events), sync);
  if (!stored) {
    spdlog::error("server {} ({}): cannot save its state: {}", st.rec.id, address_of(st.rec),
                  describe(stored.error()));
    return false;
  }
  if (!stored->empty()) self->send(st.ctx->bus, published_atom::value, stored->back().seq);
  report_presence(self);
  return true;
}

void release_slot(server_actor* self) {
  auto& st = self->state;
  if (st.holding_slot) {
    st.holding_slot = false;
    self->send(st.supervisor, release_atom::value);
  }
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
  st.collecting = true;
  st.collect_sent = steady_clock::now();
  send_message(self, wire::collect{});
}

template <class Clock>
microseconds since(typename Clock::time_point t) {
  return duration_cast<microseconds>(Clock::now() - t);
}

void schedule_retry(server_actor* self, const std::string& why) {
  auto& st = self->state;
  auto delay = backoff_delay(st.ctx->cfg.daemon, st.attempt++);
  // The same failure again is logged at debug: 100,000 offline servers would otherwise write
  // hundreds of identical lines a second. `status` and `server show` keep the last error.
  auto level =
      st.attempt == 1 || why != st.rec.last_error ? spdlog::level::info : spdlog::level::debug;
  st.rec.last_error = why;
  st.rec.failed_attempts = st.attempt;
  spdlog::log(level, "server {} ({}): {}; retrying in {} ms (attempt {})", st.rec.id,
              address_of(st.rec), why, delay.count(), st.attempt);
  report_presence(self);
  self->delayed_send(self, delay, retry_atom::value, st.generation);
}

/// Closes the current connection (if any) and forgets its TLS session.
void drop_connection(server_actor* self) {
  auto& st = self->state;
  flush_output(self);  // an alert the session wrote on its way out goes before the close
  if (st.hdl) self->send(st.ctx->broker, close_atom::value, *st.hdl);
  st.hdl.reset();
  st.tls.reset();
  st.inbox.clear();
  st.activated = st.hello_seen = st.collecting = st.connecting = false;
  release_slot(self);
  ++st.generation;
  if (st.connected) {
    st.connected = false;
    persist(self, {make_event(st.rec, "connection_down", {{"reason", st.rec.last_error}})}, false);
  }
}

/// Moves to `next` with `events`, persisted with sync (a trust decision), and switches behavior.
void transition(server_actor* self, server_state next, std::vector<event_record> events) {
  auto& st = self->state;
  st.rec.state = next;
  persist(self, std::move(events), true);
  self->become(behavior_for(self));
  if (!wants_connection(next)) drop_connection(self);
}

void erase_credentials(server_actor* self, const std::string& why) {
  auto& st = self->state;
  self->send(st.supervisor, credentials_atom::value, remove_atom::value, st.rec.id, why);
}

// -- connection failures -------------------------------------------------------------------------

/// The TLS pin check refused the server's certificate.
void on_pin_rejected(server_actor* self, const thumbprint& presented) {
  auto& st = self->state;
  st.rec.presented = presented;
  if (st.rec.state == server_state::trusted) {
    auto pinned = st.rec.pinned ? st.rec.pinned->to_string() : std::string{};
    st.rec.last_error = "certificate changed: presented " + presented.to_string() + ", pinned " +
                        pinned + "; validate it with 'certfleet server trust " + st.rec.id +
                        " --thumbprint " + presented.to_string() + "'";
    spdlog::warn("server {} ({}): {}", st.rec.id, address_of(st.rec), st.rec.last_error);
    transition(
        self, server_state::certificate_changed,
        {make_event(st.rec, "certificate_changed",
                    {{"old_thumbprint", pinned}, {"new_thumbprint", presented.to_string()}})});
    return;
  }
  // Registration: the certificate differs from the one given in advance. The credentials were
  // never sent, and they are destroyed: this server is never trusted automatically.
  auto expected = st.rec.expected ? st.rec.expected->to_string() : std::string{};
  st.rec.last_error = "certificate mismatch: presented " + presented.to_string() + ", expected " +
                      expected + "; credentials were not sent";
  spdlog::warn("server {} ({}): {}", st.rec.id, address_of(st.rec), st.rec.last_error);
  transition(self, server_state::certificate_mismatch,
             {make_event(st.rec, "certificate_mismatch",
                         {{"expected_thumbprint", expected},
                          {"presented_thumbprint", presented.to_string()}})});
  erase_credentials(self, "certificate mismatch");
}

void on_connection_failed(server_actor* self, const std::string& why) {
  auto& st = self->state;
  if (st.tls && st.tls->pin_rejection() && st.tls->peer_thumbprint()) {
    auto presented = *st.tls->peer_thumbprint();
    st.ctx->counters.handshake_failures++;
    st.rec.last_error = why;
    drop_connection(self);
    on_pin_rejected(self, presented);
    return;
  }
  if (!st.activated && (st.hdl || st.connecting)) st.ctx->counters.handshake_failures++;
  if (st.rec.state == server_state::registering) {
    st.rec.state = server_state::pending_registration;
    persist(self, {}, false);
    self->become(behavior_for(self));
  }
  st.rec.last_error = why;
  drop_connection(self);
  if (wants_connection(st.rec.state)) schedule_retry(self, why);
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
  st.rec.remote_id = msg.server_id;
  st.rec.last_error.clear();
  st.attempt = 0;
  std::vector<event_record> events{
      make_event(st.rec, "registered",
                 {{"presented_thumbprint", presented->to_string()}, {"remote_id", msg.server_id}})};
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
  st.rec.state = next;
  // The new state is durable before the credentials go: a crash in between is finished by the
  // supervisor at the next start (it deletes credentials of servers past registration).
  if (!persist(self, std::move(events), true)) {
    st.rec.state = server_state::registering;
    on_connection_failed(self, "cannot save the registration");
    return;
  }
  // Test seam for "kill -9 between registration and credential deletion" (tests/e2e): the
  // process dies exactly as SIGKILL would, after the durable state change and before the deletion.
  if (std::getenv("CERTFLEET_TEST_KILL_BEFORE_CREDENTIAL_DELETION") != nullptr) ::raise(SIGKILL);
  erase_credentials(self, "registered");
  self->become(behavior_for(self));
  if (next == server_state::trusted) {
    st.connected = true;
    persist(self, {make_event(st.rec, "connection_up", {})}, false);
    begin_collection(self);
  } else {
    drop_connection(self);
  }
}

void on_denied(server_actor* self, const wire::denied& msg) {
  auto& st = self->state;
  st.rec.last_error = std::string{"registration denied: "} + wire::to_string(msg.reason) +
                      (msg.detail.empty() ? "" : " (" + msg.detail + ")") +
                      "; give new credentials with 'certfleet server credentials " + st.rec.id +
                      " --account USER --password-stdin'";
  spdlog::warn("server {} ({}): {}", st.rec.id, address_of(st.rec), st.rec.last_error);
  transition(self, server_state::auth_failed,
             {make_event(st.rec, "auth_failed",
                         {{"reason", wire::to_string(msg.reason)}, {"detail", msg.detail}})});
  erase_credentials(self, "registration denied");
}

void on_inventory(server_actor* self, const wire::inventory& inv) {
  auto& st = self->state;
  nlohmann::json jobs = nlohmann::json::array();
  for (auto& j : inv.jobs)
    jobs.push_back({{"name", j.name},
                    {"type", j.type},
                    {"last_result", j.last_result},
                    {"last_run_ms", j.last_run_unix_ms},
                    {"size_bytes", j.size_bytes}});
  auto now = st.ctx->now_ms();
  nlohmann::json doc{{"collected_ms", now}, {"jobs", jobs}};
  if (auto err = st.ctx->store->put_inventory(st.rec.id, doc.dump()))
    spdlog::error("server {}: cannot store inventory: {}", st.rec.id, describe(err));
  st.ctx->counters.collections++;
  st.ctx->counters.collection_latency.record(since<steady_clock>(st.collect_sent));
  st.rec.last_collection_ms = now;
  st.rec.last_seen_ms = now;
  st.collecting = false;
  persist(self, {}, false);
  auto interval = milliseconds{int64_t{st.ctx->cfg.daemon.collect_interval_s} * 1000};
  auto delay = interval - interval / 10 + random_delay(interval / 5);
  self->delayed_send(self, delay, collect_atom::value, st.generation);
}

void on_message(server_actor* self, wire::message& m) {
  auto& st = self->state;
  if (auto* h = std::get_if<wire::hello>(&m)) {
    if (h->min_version > wire::protocol_version || h->max_version < wire::protocol_version) {
      on_connection_failed(self, "the server speaks protocol versions " +
                                     std::to_string(h->min_version) + ".." +
                                     std::to_string(h->max_version) + ", this manager speaks " +
                                     std::to_string(wire::protocol_version));
      return;
    }
    st.hello_seen = true;
  } else if (auto* r = std::get_if<wire::registered>(&m)) {
    if (st.rec.state == server_state::registering) on_registered(self, *r);
  } else if (auto* d = std::get_if<wire::denied>(&m)) {
    if (st.rec.state == server_state::registering) on_denied(self, *d);
  } else if (auto* inv = std::get_if<wire::inventory>(&m)) {
    if (st.rec.state == server_state::trusted) on_inventory(self, *inv);
  } else if (auto* e = std::get_if<wire::error_message>(&m)) {
    on_connection_failed(self, "the server reported an error: " + e->text);
  } else if (std::holds_alternative<wire::ping>(m)) {
    send_message(self, wire::pong{std::get<wire::ping>(m).nonce});
  }
}

/// TLS is up: say hello and do what this state connected for.
void on_activated(server_actor* self) {
  auto& st = self->state;
  release_slot(self);
  st.attempt = 0;
  st.rec.failed_attempts = 0;
  st.ctx->counters.handshakes++;
  st.ctx->counters.handshake_latency.record(since<steady_clock>(st.handshake_started));
  if (auto info = st.tls->handshake(); info && info->resumed) st.ctx->counters.resumed_handshakes++;
  st.rec.last_seen_ms = st.ctx->now_ms();
  send_message(
      self, wire::hello{wire::protocol_version, wire::protocol_version, st.ctx->manager_subject});
  if (st.rec.state == server_state::trusted) {
    st.connected = true;
    st.rec.last_error.clear();
    persist(self, {make_event(st.rec, "connection_up", {})}, false);
    begin_collection(self);
    return;
  }
  // Registration: fetch the sealed credentials from the supervisor, send them, and forget them.
  auto gen = st.generation;
  self->request(st.supervisor, seconds{10}, credentials_atom::value, st.rec.id)
      .then(
          [=](const std::string& account, const secret_bytes& password) {
            auto& s = self->state;
            if (gen != s.generation || !s.tls) return;
            s.rec.account = account;
            s.rec.state = server_state::registering;
            // Not a trust decision: a restart turns `registering` back into
            // `pending_registration`, so this write needs no fsync of its own.
            persist(self, {}, false);
            self->become(behavior_for(self));
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

void pump_tls(server_actor* self, const caf::error& err) {
  auto& st = self->state;
  auto gen = st.generation;
  if (st.tls && !st.activated && st.tls->is_active()) {
    st.activated = true;
    on_activated(self);
  }
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
  pin_check check;
  if (st.rec.state == server_state::trusted) {
    auto pinned = *st.rec.pinned;
    check = [pinned](const thumbprint& presented) -> caf::error {
      if (presented == pinned) return {};
      return make_error(ec::tls_failure,
                        "presented " + presented.to_string() + ", pinned " + pinned.to_string());
    };
  } else {
    auto expected = st.rec.expected;
    check = [expected](const thumbprint& presented) -> caf::error {
      if (!expected || presented == *expected) return {};
      return make_error(ec::tls_failure, "presented " + presented.to_string() + ", expected " +
                                             expected->to_string());
    };
  }
  tls_outputs out;
  out.ciphertext = [self](const uint8_t* data, size_t size) {
    auto& buf = self->state.outbuf;
    buf.insert(buf.end(), reinterpret_cast<const char*>(data),
               reinterpret_cast<const char*>(data) + size);
  };
  out.message = [self](wire::message&& m) { self->state.inbox.push_back(std::move(m)); };
  tls_options opts;
  opts.max_frame_size = static_cast<size_t>(st.ctx->cfg.daemon.max_frame_bytes);
  st.tls = std::make_unique<tls_client_session>(st.ctx->manager_identity, std::move(check),
                                                st.ctx->sessions, st.rec.host, st.rec.port,
                                                std::move(out), opts);
}

/// Asks the supervisor for a handshake slot; the connect starts when it is granted.
void start_connect(server_actor* self) {
  auto& st = self->state;
  if (st.connecting || st.hdl || !wants_connection(st.rec.state)) return;
  st.connecting = true;
  self->send(st.supervisor, slot_atom::value);
}

void on_slot(server_actor* self) {
  auto& st = self->state;
  st.holding_slot = true;
  if (!st.connecting || !wants_connection(st.rec.state)) {
    release_slot(self);
    return;
  }
  auto me = caf::actor_cast<caf::actor>(self);
  auto gen = st.generation;
  st.handshake_started = steady_clock::now();
  // The handshake deadline counts from the start of the connect (config/settings.hpp).
  self->delayed_send(self, milliseconds{st.ctx->cfg.daemon.handshake_timeout_ms},
                     deadline_atom::value, gen);
  st.ctx->connect->connect(st.rec.host, st.rec.port,
                           milliseconds{st.ctx->cfg.daemon.connect_timeout_ms},
                           [me, gen](int fd, const caf::error& err) {
                             if (fd >= 0)
                               caf::anon_send(me, connected_atom::value, gen, fd);
                             else
                               caf::anon_send(me, connect_failed_atom::value, gen, describe(err));
                           });
}

caf::message_handler connection_behavior(server_actor* self) {
  return {
      [=](slot_atom) { on_slot(self); },
      [=](connected_atom, uint64_t gen, int fd) {
        auto& st = self->state;
        if (gen != st.generation || !st.connecting) {
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
        if (!st.connecting || st.hdl) {
          self->send(st.ctx->broker, close_atom::value, hdl);
          return;
        }
        st.connecting = false;
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
        on_connection_failed(
            self, st.activated ? "connection lost" : "connection closed during the TLS handshake");
      },
      [=](deadline_atom, uint64_t gen) {
        auto& st = self->state;
        if (gen == st.generation && !st.activated)
          on_connection_failed(self, "TLS handshake did not complete within " +
                                         std::to_string(st.ctx->cfg.daemon.handshake_timeout_ms) +
                                         " ms");
      },
      [=](retry_atom, uint64_t gen) {
        if (gen == self->state.generation) start_connect(self);
      },
      [=](collect_atom, uint64_t gen) {
        auto& st = self->state;
        if (gen != st.generation || !st.connected || st.collecting) return;
        begin_collection(self);
        flush_output(self);
      },
  };
}

// -- admin requests ------------------------------------------------------------------------------

server_view view_of(server_actor* self) {
  auto& st = self->state;
  server_view v;
  v.record = st.rec;
  v.connected = st.connected;
  if (auto inv = st.ctx->store->get_inventory(st.rec.id); inv && *inv) v.inventory_json = **inv;
  if (auto cred = st.ctx->store->get_credential(st.rec.id); cred && *cred)
    v.credentials_retained = true;
  return v;
}

caf::result<server_view> trust(server_actor* self, const thumbprint& t, const std::string& by) {
  auto& st = self->state;
  if (st.rec.state == server_state::trusted && st.rec.pinned && *st.rec.pinned == t)
    return view_of(self);
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
  st.attempt = 0;
  transition(self, server_state::trusted,
             {make_event(st.rec, "validated",
                         {{"thumbprint", t.to_string()}, {"by", by}, {"previous", previous}})});
  start_connect(self);
  return view_of(self);
}

caf::result<server_view> reject(server_actor* self) {
  auto& st = self->state;
  if (st.rec.state != server_state::awaiting_validation &&
      st.rec.state != server_state::certificate_changed)
    return make_error(ec::invalid_state, "server " + st.rec.id + " is " + to_string(st.rec.state) +
                                             "; only a presented thumbprint awaiting validation "
                                             "can be rejected");
  auto presented = st.rec.presented ? st.rec.presented->to_string() : std::string{};
  st.rec.last_error = "thumbprint " + presented + " rejected by an admin";
  auto next = st.rec.state == server_state::awaiting_validation ? server_state::certificate_mismatch
                                                                : server_state::certificate_changed;
  transition(self, next, {make_event(st.rec, "rejected", {{"thumbprint", presented}})});
  return view_of(self);
}

caf::message_handler admin_behavior(server_actor* self) {
  return {
      [=](show_atom) -> server_view { return view_of(self); },
      [=](trust_atom, const thumbprint& t, const std::string& by) { return trust(self, t, by); },
      [=](reject_atom) { return reject(self); },
      [=](remove_atom) -> caf::result<bool> {
        auto& st = self->state;
        drop_connection(self);
        auto stored =
            st.ctx->store->remove_server(st.rec.id, {make_event(st.rec, "server_removed", {})});
        if (!stored) return stored.error();
        if (!stored->empty()) self->send(st.ctx->bus, published_atom::value, stored->back().seq);
        st.rec.state = server_state::removed;
        self->quit();
        return true;
      },
      [=](credentials_atom, remove_atom, const std::string& why) {
        // The supervisor destroyed the retained credentials (credential_max_age_s).
        auto& st = self->state;
        if (st.rec.state != server_state::pending_registration &&
            st.rec.state != server_state::registering)
          return;
        st.rec.last_error = why;
        transition(self, server_state::auth_failed,
                   {make_event(st.rec, "auth_failed", {{"reason", why}})});
      },
      [=](credentials_atom, const std::string& account) -> caf::result<server_view> {
        // The supervisor has sealed and stored the new credentials; register again.
        auto& st = self->state;
        st.rec.account = account;
        st.rec.last_error.clear();
        st.attempt = 0;
        if (st.rec.state != server_state::pending_registration)
          transition(self, server_state::pending_registration, {});
        start_connect(self);
        return view_of(self);
      },
  };
}

/// One behavior serves every state: admin requests check the state they need, and connection
/// messages about an abandoned attempt are dropped by the generation check, so a state that does
/// not contact its server simply never starts a connection.
caf::behavior behavior_for(server_actor* self) {
  return admin_behavior(self).or_else(connection_behavior(self));
}

caf::behavior server_main(server_actor* self, context_ptr ctx, caf::actor supervisor,
                          server_record rec) {
  self->state.ctx = std::move(ctx);
  self->state.supervisor = std::move(supervisor);
  self->state.rec = std::move(rec);
  if (self->state.rec.state == server_state::registering)
    self->state.rec.state = server_state::pending_registration;
  report_presence(self);
  start_connect(self);
  return behavior_for(self);
}

}  // namespace

caf::actor spawn_server_actor(caf::actor_system& sys, context_ptr ctx, caf::actor supervisor,
                              server_record rec) {
  return sys.spawn(server_main, std::move(ctx), std::move(supervisor), std::move(rec));
}

}  // namespace certfleet
