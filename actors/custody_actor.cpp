#include "actors/custody_actor.hpp"

#include <algorithm>
#include <unordered_set>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/events.hpp"

namespace certfleet {
namespace {

using erase_atom = caf::atom_constant<caf::atom("erase")>;

// One scrub rewrites the whole credentials family, so its cost barely depends on how many ids it
// erases; the cap only bounds how long one batch holds up the custody actor.
constexpr size_t max_erase_batch = 256;
constexpr auto erase_retry_delay = std::chrono::seconds{1};

/// A credential deletion waiting for the next batch, with the event it will produce.
struct pending_erasure {
  std::string id;
  event_record event;
};

struct custody_data {
  context_ptr ctx;
  caf::actor registry;
  std::vector<pending_erasure> erasures;
  std::unordered_set<std::string> erasing;
  bool erase_scheduled = false;
  bool stopping = false;
  static inline const char* name = "certfleet.custody";
};

using custody_actor = caf::stateful_actor<custody_data>;

void publish(custody_actor* self, const std::vector<event_record>& stored) {
  log_stored(stored);
  if (!stored.empty()) self->send(self->state.ctx->bus, published_atom::value, stored.back().seq);
}

/// Deletes the queued credentials unrecoverably, `max_erase_batch` ids per scrub, publishing their
/// credentials_deleted events. On failure the rest stays queued and a retry is scheduled.
void erase_queued(custody_actor* self) {
  auto& st = self->state;
  while (!st.erasures.empty()) {
    auto n = std::min(st.erasures.size(), max_erase_batch);
    std::vector<std::string> ids;
    std::vector<event_record> events;
    ids.reserve(n);
    events.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      ids.push_back(st.erasures[i].id);
      events.push_back(st.erasures[i].event);
    }
    auto stored = st.ctx->store->erase_credentials(ids, std::move(events));
    if (!stored) {
      spdlog::error("cannot delete the credentials of {} servers (first {}); retrying in {} s: {}",
                    n, ids.front(), erase_retry_delay.count(), describe(stored.error()));
      if (!st.erase_scheduled && !st.stopping) {
        st.erase_scheduled = true;
        self->delayed_send(self, erase_retry_delay, erase_atom::value);
      }
      return;
    }
    publish(self, *stored);
    for (auto& id : ids) st.erasing.erase(id);
    st.erasures.erase(st.erasures.begin(), st.erasures.begin() + static_cast<std::ptrdiff_t>(n));
  }
}

/// Queues the deletion of the sealed credentials of `id`, with a credentials_deleted event. The
/// batch runs once the requests already in the mailbox are handled (they join it).
void queue_erasure(custody_actor* self, const std::string& id, const std::string& why) {
  auto& st = self->state;
  if (st.erasing.count(id) > 0) return;
  server_record r;
  r.id = id;
  if (auto rec = st.ctx->store->get_server(id); rec && *rec) r = **rec;
  st.erasures.push_back({id, make_event(r, event_type::credentials_deleted, {{"reason", why}})});
  st.erasing.insert(id);
  if (st.erasures.size() >= max_erase_batch) {
    erase_queued(self);
  } else if (!st.erase_scheduled) {
    st.erase_scheduled = true;
    self->send(self, erase_atom::value);
  }
}

/// Deletes the sealed credentials of `records` unrecoverably at once, in batches, with a
/// credentials_deleted event each. Returns the ids whose deletion failed.
std::unordered_set<std::string> erase_now(custody_actor* self,
                                          const std::vector<server_record>& records,
                                          const std::string& why) {
  auto& st = self->state;
  std::unordered_set<std::string> failed;
  for (size_t first = 0; first < records.size(); first += max_erase_batch) {
    auto last = std::min(records.size(), first + max_erase_batch);
    std::vector<std::string> ids;
    std::vector<event_record> events;
    for (size_t i = first; i < last; ++i) {
      ids.push_back(records[i].id);
      events.push_back(make_event(records[i], event_type::credentials_deleted, {{"reason", why}}));
    }
    auto stored = st.ctx->store->erase_credentials(ids, std::move(events));
    if (!stored) {
      spdlog::error("cannot delete the credentials of {} servers (first {}): {}", ids.size(),
                    ids.front(), describe(stored.error()));
      failed.insert(ids.begin(), ids.end());
      continue;
    }
    publish(self, *stored);
  }
  return failed;
}

/// Finishes credential deletions that a crash interrupted.
void clean_up_after_crash(custody_actor* self) {
  auto& st = self->state;
  std::vector<server_record> orphans;
  for (auto& id : st.ctx->store->credential_ids()) {
    auto rec = st.ctx->store->get_server(id);
    // A legacy server logs in with its credentials on every session: they stay while it is legacy.
    if (rec && *rec &&
        ((*rec)->state == server_state::pending_registration ||
         (*rec)->state == server_state::registering ||
         (*rec)->auth == server_auth::legacy_credentials))
      continue;
    server_record orphan;
    orphan.id = id;
    if (rec && *rec) orphan = **rec;
    spdlog::info("server {}: deleting credentials left behind by an interrupted run", id);
    orphans.push_back(std::move(orphan));
  }
  erase_now(self, orphans, "cleanup at start: registration already finished");
}

void sweep_expired_credentials(custody_actor* self) {
  auto& st = self->state;
  auto max_age = st.ctx->cfg.daemon.credential_max_age_s;
  if (max_age <= 0) return;
  auto now = st.ctx->now_ms();
  std::vector<server_record> expired;
  for (auto& id : st.ctx->store->credential_ids()) {
    if (st.erasing.count(id) > 0) continue;  // already on its way out
    auto rec = st.ctx->store->get_server(id);
    if (!rec || !*rec || now - (*rec)->updated_ms < int64_t{max_age} * 1000) continue;
    // credential_max_age does not apply to legacy servers: they need them for every session.
    if ((*rec)->auth == server_auth::legacy_credentials) continue;
    expired.push_back(std::move(**rec));
  }
  if (expired.empty()) return;
  auto why =
      "credentials expired after " + std::to_string(max_age) + " s without reaching the server";
  auto failed = erase_now(self, expired, why);
  std::vector<std::string> erased;
  for (const auto& rec : expired)
    if (failed.count(rec.id) == 0) erased.push_back(rec.id);
  if (!erased.empty() && st.registry)
    self->send(st.registry, credentials_atom::value, remove_atom::value, std::move(erased), why);
}

caf::behavior custody(custody_actor* self, context_ptr ctx) {
  self->state.ctx = std::move(ctx);
  clean_up_after_crash(self);
  return {
      [=](registry_atom, const caf::actor& registry) { self->state.registry = registry; },
      [=](credentials_atom, const std::string& id) -> caf::result<std::string, secret_bytes> {
        auto& st = self->state;
        if (st.erasing.count(id) > 0)
          return make_error(ec::not_found, "no retained credentials for server " + id);
        auto blob = st.ctx->store->get_credential(id);
        if (!blob) return blob.error();
        if (!*blob) return make_error(ec::not_found, "no retained credentials for server " + id);
        auto rec = st.ctx->store->get_server(id);
        if (!rec || !*rec) return make_error(ec::not_found, "no server with id " + id);
        auto password = open(st.ctx->sealing_key, id, **blob);
        if (!password) return password.error();
        return caf::result<std::string, secret_bytes>((*rec)->account, std::move(*password));
      },
      [=](credentials_atom, remove_atom, const std::string& id, const std::string& why) {
        queue_erasure(self, id, why);
      },
      [=](erase_atom) {
        self->state.erase_scheduled = false;
        erase_queued(self);
      },
      [=](credentials_atom, add_atom, const sealed_credentials& creds) -> caf::result<bool> {
        if (auto err = self->state.ctx->store->put_credentials(creds)) return err;
        return true;
      },
      [=](credentials_atom, const std::string& id, const std::string& account,
          const secret_bytes& password) -> caf::result<bool> {
        auto& st = self->state;
        // A queued deletion of the old credentials must not hit the new ones.
        if (st.erasing.count(id) > 0) {
          erase_queued(self);
          if (st.erasing.count(id) > 0)
            return make_error(ec::storage_failure,
                              "the old credentials of server " + id +
                                  " could not be deleted yet (see the daemon log); retry shortly");
        }
        auto blob = seal(st.ctx->sealing_key, id, password);
        if (!blob) return blob.error();
        if (auto err = st.ctx->store->put_credential(id, *blob)) return err;
        auto rec = st.ctx->store->get_server(id);
        if (rec && *rec) {
          auto stored = st.ctx->store->append_events(
              {make_event(**rec, event_type::credentials_retained, {{"account", account}})});
          if (stored) publish(self, *stored);
        }
        return true;
      },
      [=](sweep_atom) { sweep_expired_credentials(self); },
      [=](stop_atom) {
        self->state.stopping = true;
        // Queued deletions are finished now rather than by the next start's cleanup.
        erase_queued(self);
        self->quit();
      },
  };
}

}  // namespace

std::chrono::seconds credential_sweep_period(const daemon_settings& cfg) {
  return std::chrono::seconds{std::clamp(cfg.credential_max_age_s / 2, 1, 10)};
}

caf::actor spawn_custody_actor(caf::actor_system& sys, context_ptr ctx, bool detached) {
  if (detached) return sys.spawn<caf::detached>(custody, std::move(ctx));
  return sys.spawn(custody, std::move(ctx));
}

}  // namespace certfleet
