#include "actors/renewal_actor.hpp"

#include <unordered_map>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"
#include "actors/renewal_schedule.hpp"
#include "actors/server_certificate.hpp"
#include "actors/server_expiry.hpp"
#include "common/vocabulary.hpp"

namespace certfleet {
namespace {

struct renewal_state {
  context_ptr ctx;
  std::optional<renewal_schedule> schedule;
  /// The certificate the schedule is about; a renewal (`cert renew`) starts a new schedule.
  thumbprint scheduled;
  std::optional<server_expiry_watchlist> servers;
  // The actor of each watched server, which records the warning with its event.
  std::unordered_map<std::string, caf::actor> owners;
  static inline const char* name = "renewal";
};

using renewal_actor = caf::stateful_actor<renewal_state>;

wall_time now_of(const daemon_context& ctx) {
  return wall_time{std::chrono::milliseconds{ctx.now_ms()}};
}

std::optional<renewal_prompt_record> load_record(const daemon_context& ctx) {
  auto stored = ctx.store->get_meta(renewal_record_key);
  if (!stored || !*stored) return std::nullopt;
  auto record = decode_renewal_record(**stored);
  if (!record) {
    spdlog::warn("the last renewal prompt's record is unreadable ({}); a prompt may repeat",
                 describe(record.error()));
    return std::nullopt;
  }
  return *record;
}

void start_schedule(renewal_actor* self) {
  auto& st = self->state;
  auto id = st.ctx->identities->current();
  st.scheduled = id.sha256();
  st.schedule.emplace(id.not_after(), id.sha256().to_string(), renewal_policy_of(st.ctx->cfg),
                      load_record(*st.ctx));
}

/// Hands each due `server_certificate_expiring` to the server's actor, which stores the event with
/// the record that remembers it (one writer per record).
void check_servers(renewal_actor* self) {
  auto& st = self->state;
  for (auto& w : st.servers->due(now_of(*st.ctx))) {
    auto owner = st.owners.find(w.server_id);
    if (owner == st.owners.end()) continue;
    spdlog::warn("{}", describe(w));
    nlohmann::json details;
    to_json(details, w);
    self->send(owner->second, expiring_atom::value, w.thumbprint, details.dump());
  }
}

void tick(renewal_actor* self) {
  check_servers(self);
  auto& st = self->state;
  if (st.ctx->identities->current().sha256() != st.scheduled) start_schedule(self);
  auto prompt = st.schedule->on_tick(now_of(*st.ctx));
  if (!prompt) return;
  spdlog::warn("{}", describe(*prompt));
  event_record e;
  e.type = to_string(event_type::certificate_renewal_due);
  nlohmann::json details;
  to_json(details, *prompt);
  e.details = details.dump();
  // The storage actor handles its mailbox in order: the event is durable before the record.
  self->send(st.ctx->storage, add_atom::value, std::vector<event_record>{std::move(e)});
  self->send(st.ctx->storage, meta_atom::value, std::string{renewal_record_key},
             encode_renewal_record(*st.schedule->last_prompt()));
}

caf::behavior renewal(renewal_actor* self, context_ptr ctx) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  start_schedule(self);
  st.servers.emplace(std::chrono::seconds{st.ctx->cfg.daemon.clock_skew_tolerance_s},
                     st.ctx->cfg.identity.renewal_warning_days);
  // The first check at once: a daemon started inside the window prompts without waiting a tick.
  self->send(self, tick_atom::value);
  return {
      [=](tick_atom) { tick(self); },
      [=](watch_atom, watched_certificate& w) {
        auto& s = self->state;
        s.owners[w.server_id] = caf::actor_cast<caf::actor>(self->current_sender());
        s.servers->watch(std::move(w));
        check_servers(self);
      },
      [=](watch_atom, remove_atom, const std::string& id) {
        self->state.servers->unwatch(id);
        self->state.owners.erase(id);
      },
      [=](stop_atom) { self->quit(); },
  };
}

}  // namespace

caf::actor spawn_renewal_actor(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(renewal, std::move(ctx));
}

}  // namespace certfleet
