#include "actors/rotation_actor.hpp"

#include <map>
#include <optional>
#include <set>
#include <vector>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"
#include "actors/renewal_schedule.hpp"
#include "actors/rotation_record.hpp"
#include "common/address.hpp"
#include "common/failpoint.hpp"
#include "common/vocabulary.hpp"
#include "config/state_layout.hpp"
#include "crypto/manager_rotation.hpp"
#include "protocol/session_forget.hpp"

namespace certfleet {
namespace {

using flush_atom = caf::atom_constant<caf::atom("flush")>;

struct moved_server {
  std::string id;
  std::string host;
  uint16_t port = 0;
};

struct rotation_data {
  context_ptr ctx;
  caf::actor registry;
  std::optional<rotation_record> rec;
  std::vector<moved_server> moved_queue;
  std::vector<std::string> dropped_queue;
  bool flush_scheduled = false;
  /// The agents' refusals, by server id, for `cert status` (not stored: a refusal is retried at
  /// the server's next connection).
  std::map<std::string, std::string> refusals;
  static inline const char* name = "certfleet.rotation";
};

using rotation_actor = caf::stateful_actor<rotation_data>;

/// The servers whose agents registered the current certificate: every one that reached
/// registration (trusted, waiting for validation, or blocked on a changed server certificate).
bool registered_this_manager(server_state s) {
  return s == server_state::trusted || s == server_state::awaiting_validation ||
         s == server_state::certificate_changed;
}

std::string iso_of_seconds(int64_t s) {
  return iso8601_utc(wall_time{std::chrono::seconds{s}});
}

event_record rotation_event(event_type t, const nlohmann::json& details) {
  event_record e;
  e.type = to_string(t);
  e.details = details.dump();
  return e;
}

caf::expected<certificate_store> open_store(const daemon_context& ctx) {
  return certificate_store::open(state_layout{ctx.cfg.state_dir}.certs_dir(), false,
                                 ctx.cfg.identity.store_group);
}

/// Stores `r` with `events` in one fsynced batch, then publishes the events.
caf::error save(rotation_actor* self, const rotation_record& r, std::vector<event_record> events) {
  auto& st = self->state;
  auto stored =
      st.ctx->store->put_meta(rotation_record_key, encode_rotation_record(r), std::move(events));
  if (!stored) return stored.error();
  // Also without events of its own: this fsync made the events other actors wrote without one
  // durable, and the store tells the bus about that only when its log syncer does the fsync.
  if (st.ctx->bus)
    self->send(st.ctx->bus, published_atom::value, st.ctx->store->durable_event_seq());
  return {};
}

/// Asks every server actor to send what the rotation owes its agent, if it is connected.
void nudge_servers(rotation_actor* self) {
  auto& st = self->state;
  if (st.registry)
    self->send(st.registry, forward_atom::value, std::vector<std::string>{},
               caf::make_message(rotation_atom::value));
}

rotation_view view_of(rotation_actor* self) {
  auto& st = self->state;
  rotation_view v;
  if (!st.rec) return v;
  const auto& r = *st.rec;
  v.phase = to_string(r.phase);
  v.old_thumbprint = r.old_thumbprint;
  v.new_thumbprint = r.new_thumbprint;
  v.old_not_after = iso_of_seconds(r.old_not_after_s);
  auto current = st.ctx->identities->current();
  if (current.sha256().to_string() == r.new_thumbprint)
    v.new_not_after = current.summary().not_after;
  v.started_ms = r.started_ms;
  v.completed_ms = r.completed_ms;
  v.servers = r.servers.size();
  v.moved = r.moved_count();
  for (const auto& id : r.pending()) {
    if (r.phase != rotation_phase::rolling_out) break;
    auto refused = st.refusals.find(id);
    v.pending.push_back({id, refused == st.refusals.end() ? std::string{} : refused->second});
  }
  v.missed = r.missed;
  v.drops_owed = r.drop_owed.size();
  return v;
}

/// Every server moved or the old certificate expired: the servers left behind must register
/// again, the old key is destroyed, and the agents are told to drop the old certificate. Each
/// step is idempotent; a failure leaves the phase where it was and the next tick tries again.
void finish(rotation_actor* self) {
  auto& st = self->state;
  if (!st.rec || !st.rec->active()) return;
  auto now = st.ctx->now_ms();
  if (st.rec->phase == rotation_phase::rolling_out) {
    auto next = *st.rec;
    next.missed = next.pending();
    for (const auto& [id, moved] : next.servers)
      if (moved != 0) next.drop_owed.insert(id);
    next.phase = rotation_phase::retiring;
    if (auto err = save(self, next, {})) {
      spdlog::error("cannot record the end of the manager certificate roll-out: {}", describe(err));
      return;
    }
    st.rec = std::move(next);
  }
  auto& r = *st.rec;
  if (!r.missed.empty()) {
    spdlog::warn(
        "the old manager certificate {} expired before {} server(s) received its "
        "successor; each must be registered again with 'certfleet server credentials ID'",
        r.old_thumbprint, r.missed.size());
    if (st.registry)
      self->send(st.registry, forward_atom::value, r.missed,
                 caf::make_message(reregister_atom::value));
  }
  // Test builds can die here: the roll-out is recorded as over, the old key not yet destroyed.
  CERTFLEET_FAILPOINT("rotation.before_key_retirement");
  auto old = thumbprint::parse(r.old_thumbprint);
  auto store = open_store(*st.ctx);
  if (!old || !store) {
    spdlog::error("cannot retire the old manager key: {}",
                  describe(!old ? old.error() : store.error()));
    return;
  }
  auto retired = retire_previous_identity(*store, *old);
  if (!retired) {
    spdlog::error("cannot retire the old manager key {}: {}", r.old_thumbprint,
                  describe(retired.error()));
    return;
  }
  st.ctx->identities->retire(*old, r.drop_owed);
  auto next = r;
  next.phase = rotation_phase::completed;
  next.completed_ms = now;
  auto e = rotation_event(event_type::rotation_completed, {{"old_thumbprint", r.old_thumbprint},
                                                           {"new_thumbprint", r.new_thumbprint},
                                                           {"servers", r.servers.size()},
                                                           {"moved", r.moved_count()},
                                                           {"missed", r.missed},
                                                           {"old_key_retired", true}});
  if (auto err = save(self, next, {std::move(e)})) {
    spdlog::error("cannot record the completed manager certificate rotation: {}", describe(err));
    return;
  }
  st.rec = std::move(next);
  spdlog::info(
      "manager certificate rotation {} -> {} completed: {} of {} servers moved, old key "
      "destroyed",
      r.old_thumbprint, r.new_thumbprint, r.moved_count(), r.servers.size());
  nudge_servers(self);
}

caf::result<rotation_view> renew(rotation_actor* self, const std::string& friendly_name) {
  auto& st = self->state;
  auto& ctx = *st.ctx;
  if (st.rec && st.rec->active())
    return make_error(ec::invalid_state,
                      "a rotation of the manager certificate from " + st.rec->old_thumbprint +
                          " to " + st.rec->new_thumbprint + " is in progress (" +
                          std::to_string(st.rec->moved_count()) + " of " +
                          std::to_string(st.rec->servers.size()) +
                          " servers moved); follow it with 'certfleet cert status'");
  auto store = open_store(ctx);
  if (!store) return store.error();
  auto current = ctx.identities->current();
  auto on_disk = store->load_current();
  if (!on_disk) return on_disk.error();
  if (on_disk->sha256() != current.sha256())
    return make_error(ec::invalid_state,
                      "the certificate store holds " + on_disk->sha256().to_string() +
                          " but this daemon presents " + current.sha256().to_string() +
                          "; restart certfleetd, then renew");
  // An older previous identity (kept by `cert generate`) is destroyed properly first: installing
  // the new one would only unlink its files.
  auto previous = store->load_previous();
  if (!previous) return previous.error();
  if (*previous && (*previous)->sha256() != current.sha256())
    if (auto retired = retire_previous_identity(*store, (*previous)->sha256()); !retired)
      return retired.error();
  auto now = ctx.now_ms();
  auto next = identity::generate({ctx.cfg.identity.common_name, ctx.cfg.identity.organization},
                                 std::chrono::hours{24} * ctx.cfg.identity.validity_days,
                                 friendly_name.empty() ? current.friendly_name() : friendly_name,
                                 wall_time{std::chrono::milliseconds{now}});
  if (!next) return next.error();
  rotation_record r;
  r.phase = rotation_phase::rolling_out;
  r.old_thumbprint = current.sha256().to_string();
  r.new_thumbprint = next->sha256().to_string();
  r.old_not_after_s =
      std::chrono::duration_cast<std::chrono::seconds>(current.not_after().time_since_epoch())
          .count();
  r.started_ms = now;
  if (auto err = ctx.store->for_each_server([&](const server_record& s) {
        if (registered_this_manager(s.state)) r.servers[s.id] = 0;
        return true;
      }))
    return err;
  auto e =
      rotation_event(event_type::rotation_started, {{"old_thumbprint", r.old_thumbprint},
                                                    {"new_thumbprint", r.new_thumbprint},
                                                    {"new_not_after", next->summary().not_after},
                                                    {"servers", r.servers.size()}});
  // The record first: a daemon killed before the new identity is stored finds the record, sees
  // the old identity still current, and marks the rotation abandoned; nothing was rolled out.
  if (auto err = save(self, r, {std::move(e)})) return err;
  CERTFLEET_FAILPOINT("rotation.before_install");
  if (auto err = store->install(*next)) {
    auto abandoned = r;
    abandoned.phase = rotation_phase::abandoned;
    if (auto e2 = save(self, abandoned, {}))
      spdlog::error("cannot record the abandoned rotation: {}", describe(e2));
    st.rec = std::move(abandoned);
    return err;
  }
  std::set<std::string> pending;
  for (const auto& [id, moved] : r.servers) pending.insert(id);
  ctx.identities->begin(current, *next, std::move(pending));
  st.refusals.clear();
  st.rec = std::move(r);
  spdlog::info("manager certificate renewed: {} -> {}; rolling it out to {} server(s)",
               st.rec->old_thumbprint, st.rec->new_thumbprint, st.rec->servers.size());
  nudge_servers(self);
  if (st.rec->ready_to_retire(now)) finish(self);
  return view_of(self);
}

void schedule_flush(rotation_actor* self) {
  auto& st = self->state;
  if (st.flush_scheduled) return;
  st.flush_scheduled = true;
  self->send(self, flush_atom::value);
}

/// Records the queued acknowledgements in one fsynced batch; only then do the moved servers get
/// the new certificate, and their resumable sessions (made with the old one) are forgotten.
void flush(rotation_actor* self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  auto moved = std::move(st.moved_queue);
  auto dropped = std::move(st.dropped_queue);
  st.moved_queue.clear();
  st.dropped_queue.clear();
  if (!st.rec || (moved.empty() && dropped.empty())) return;
  auto now = st.ctx->now_ms();
  auto next = *st.rec;
  std::vector<event_record> events;
  std::vector<moved_server> flipped;
  for (auto& m : moved) {
    if (next.phase != rotation_phase::rolling_out || !next.mark_moved(m.id, now)) continue;
    event_record e =
        rotation_event(event_type::server_rotated, {{"old_thumbprint", next.old_thumbprint},
                                                    {"new_thumbprint", next.new_thumbprint},
                                                    {"moved", next.moved_count()},
                                                    {"servers", next.servers.size()}});
    e.server_id = m.id;
    e.address = format_address(m.host, m.port);
    events.push_back(std::move(e));
    flipped.push_back(std::move(m));
  }
  std::vector<std::string> confirmed;
  for (auto& id : dropped)
    if (next.drop_owed.erase(id) > 0) confirmed.push_back(id);
  if (flipped.empty() && confirmed.empty()) return;
  if (auto err = save(self, next, std::move(events))) {
    // Not recorded: those servers keep the old certificate and are offered the new one again at
    // their next connection (the agent stores it again; nothing is lost).
    spdlog::error("cannot record {} server(s) as moved to the new manager certificate: {}",
                  flipped.size(), describe(err));
    return;
  }
  st.rec = std::move(next);
  std::vector<std::string> ids;
  for (const auto& m : flipped) {
    forget_client_session(*st.ctx->sessions, m.host, m.port);
    st.refusals.erase(m.id);
    ids.push_back(m.id);
  }
  st.ctx->identities->moved(ids);
  for (const auto& id : confirmed) st.ctx->identities->dropped(id);
  // Test builds can die here, in the middle of a roll-out, as SIGKILL would.
  if (!flipped.empty()) CERTFLEET_FAILPOINT("rotation.after_server_rotated");
  if (st.rec->ready_to_retire(now)) finish(self);
}

/// The timer's tick: servers removed since the rotation started stop counting, and the old
/// certificate's expiry ends the roll-out.
void tick(rotation_actor* self) {
  auto& st = self->state;
  if (!st.rec || !st.rec->active()) return;
  if (st.rec->phase == rotation_phase::rolling_out) {
    auto next = *st.rec;
    bool changed = false;
    for (const auto& id : next.pending()) {
      auto s = st.ctx->store->get_server(id);
      if (s && (!*s || (*s)->state == server_state::removed)) changed = next.forget(id) || changed;
    }
    if (changed) {
      if (auto err = save(self, next, {}))
        spdlog::error("cannot update the rotation record: {}", describe(err));
      else
        st.rec = std::move(next);
    }
    if (!st.ctx->identities->previous()) {
      // The old key is gone although the roll-out was not over (retired by hand): nothing can be
      // sent any more, so the roll-out ends here.
      spdlog::warn(
          "the previous manager identity is missing from the certificate store; ending "
          "the roll-out");
      finish(self);
      return;
    }
  }
  if (st.rec->phase == rotation_phase::retiring || st.rec->ready_to_retire(st.ctx->now_ms()))
    finish(self);
}

caf::behavior rotation(rotation_actor* self, context_ptr ctx) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  if (auto stored = st.ctx->store->get_meta(rotation_record_key); stored && *stored) {
    auto r = decode_rotation_record(**stored);
    if (r)
      st.rec = std::move(*r);
    else
      spdlog::error("{}", describe(r.error()));
  }
  return {
      [=](registry_atom, const caf::actor& registry) {
        self->state.registry = registry;
        if (self->state.rec && self->state.rec->active()) {
          spdlog::info("resuming the manager certificate rotation {} -> {} ({} of {} moved)",
                       self->state.rec->old_thumbprint, self->state.rec->new_thumbprint,
                       self->state.rec->moved_count(), self->state.rec->servers.size());
          nudge_servers(self);
          tick(self);
        } else if (self->state.rec && !self->state.rec->drop_owed.empty()) {
          nudge_servers(self);
        }
      },
      [=](renew_atom, const std::string& friendly_name) { return renew(self, friendly_name); },
      [=](rotation_atom, status_atom) { return view_of(self); },
      [=](rotated_atom, const std::string& id, const std::string& host, uint16_t port,
          const thumbprint& stored) {
        auto& s = self->state;
        if (!s.rec || s.rec->phase != rotation_phase::rolling_out ||
            stored.to_string() != s.rec->new_thumbprint || !s.rec->is_pending(id))
          return;
        s.moved_queue.push_back({id, host, port});
        schedule_flush(self);
      },
      [=](retired_atom, const std::string& id, const thumbprint& retired) {
        auto& s = self->state;
        if (!s.rec || retired.to_string() != s.rec->old_thumbprint ||
            s.rec->drop_owed.count(id) == 0)
          return;
        s.dropped_queue.push_back(id);
        schedule_flush(self);
      },
      [=](rotation_atom, reject_atom, const std::string& id, const std::string& detail) {
        self->state.refusals[id] = detail;
      },
      [=](rotation_atom, add_atom, const std::string& id) {
        // Registered with the old certificate while the rotation rolled out.
        auto& s = self->state;
        if (!s.rec || s.rec->phase != rotation_phase::rolling_out || s.rec->servers.count(id))
          return;
        auto next = *s.rec;
        next.servers[id] = 0;
        if (auto err = save(self, next, {})) {
          spdlog::error("server {}: cannot add it to the rotation: {}", id, describe(err));
          return;
        }
        s.rec = std::move(next);
        s.ctx->identities->join(id);
        if (s.registry)
          self->send(s.registry, forward_atom::value, std::vector<std::string>{id},
                     caf::make_message(rotation_atom::value));
      },
      [=](flush_atom) { flush(self); },
      [=](tick_atom) { tick(self); },
      [=](stop_atom) {
        flush(self);
        self->quit();
      },
  };
}

}  // namespace

caf::expected<std::shared_ptr<manager_identities>> open_manager_identities(
    const certificate_store& store, state_store& db, const identity& current) {
  auto book = std::make_shared<manager_identities>(current);
  auto stored = db.get_meta(rotation_record_key);
  if (!stored) return stored.error();
  if (!*stored) return book;
  auto r = decode_rotation_record(**stored);
  if (!r) return r.error();
  auto current_hex = current.sha256().to_string();
  if (r->active() && current_hex != r->new_thumbprint) {
    if (r->phase == rotation_phase::rolling_out && current_hex == r->old_thumbprint) {
      spdlog::warn(
          "the manager certificate renewal started at {} stopped before its new identity "
          "{} was stored; nothing was rolled out. Run 'certfleet cert renew' again",
          iso8601_utc(wall_time{std::chrono::milliseconds{r->started_ms}}), r->new_thumbprint);
      r->phase = rotation_phase::abandoned;
      if (auto err = db.put_meta(rotation_record_key, encode_rotation_record(*r))) return err;
      return book;
    }
    return make_error(ec::invalid_state, "the certificate store's current identity " + current_hex +
                                             " is neither side of the rotation from " +
                                             r->old_thumbprint + " to " + r->new_thumbprint +
                                             " recorded in the database; restore the "
                                             "certificate store " +
                                             store.dir().string() + " from a backup");
  }
  auto old = thumbprint::parse(r->old_thumbprint);
  if (!old) return old.error();
  if (r->phase == rotation_phase::rolling_out) {
    auto previous = store.load_previous();
    if (!previous) return previous.error();
    if (*previous && (*previous)->sha256() == *old) {
      std::set<std::string> pending;
      for (const auto& id : r->pending()) pending.insert(id);
      book->begin(**previous, current, std::move(pending));
    }
    // Otherwise the old key is gone already: the rotation actor ends the roll-out at start.
  } else if (r->phase == rotation_phase::retiring || r->phase == rotation_phase::completed) {
    book->retire(*old, r->drop_owed);
  }
  return book;
}

void forget_rotated_sessions(state_store& db, tls_session_cache& sessions) {
  auto stored = db.get_meta(rotation_record_key);
  if (!stored || !*stored) return;
  auto r = decode_rotation_record(**stored);
  if (!r || r->phase == rotation_phase::abandoned) return;
  if (r->phase == rotation_phase::completed && r->drop_owed.empty()) return;
  for (const auto& [id, moved] : r->servers) {
    if (moved == 0) continue;
    auto s = db.get_server(id);
    if (s && *s) forget_client_session(sessions, (*s)->host, (*s)->port);
  }
}

caf::actor spawn_rotation_actor(caf::actor_system& sys, context_ptr ctx, bool detached) {
  if (detached) return sys.spawn<caf::detached>(rotation, std::move(ctx));
  return sys.spawn(rotation, std::move(ctx));
}

}  // namespace certfleet
