#include "actors/supervisor.hpp"

#include <algorithm>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/events.hpp"
#include "actors/server_actor.hpp"

namespace certfleet {
namespace {

using sweep_atom = caf::atom_constant<caf::atom("sweep")>;
using erase_atom = caf::atom_constant<caf::atom("erase")>;

// One scrub rewrites the whole credentials family, so its cost barely depends on how many ids it
// erases; the cap only bounds how long one batch holds up the supervisor.
constexpr size_t max_erase_batch = 256;
constexpr auto erase_retry_delay = std::chrono::seconds{1};

/// A credential deletion waiting for the next batch, with the event it will produce.
struct pending_erasure {
  std::string id;
  event_record event;
};

struct supervisor_data {
  context_ptr ctx;
  std::unordered_map<std::string, caf::actor> servers;
  std::unordered_map<caf::actor_addr, std::string> ids;
  std::unordered_map<std::string, server_presence> presence;
  std::unordered_map<std::string, std::string> by_address;
  // Handshake admission.
  size_t in_flight = 0;
  std::deque<caf::actor> waiting;
  std::unordered_map<caf::actor_addr, size_t> holders;
  std::deque<std::string> last_errors;
  // Batched credential deletion: the queue, the ids in it, and whether an erase_atom is on its way.
  std::vector<pending_erasure> erasures;
  std::unordered_set<std::string> erasing;
  bool erase_scheduled = false;
  bool stopping = false;
  static inline const char* name = "certfleet.supervisor";
};

using supervisor_actor = caf::stateful_actor<supervisor_data>;

std::string address_key(const std::string& host, uint16_t port) {
  return host + ":" + std::to_string(port);
}

void publish(supervisor_actor* self, const std::vector<event_record>& stored) {
  if (!stored.empty()) self->send(self->state.ctx->bus, published_atom::value, stored.back().seq);
}

void spawn_server(supervisor_actor* self, const server_record& rec) {
  auto& st = self->state;
  auto a = spawn_server_actor(self->system(), st.ctx, caf::actor_cast<caf::actor>(self), rec);
  self->monitor(a);
  st.servers[rec.id] = a;
  st.ids[a.address()] = rec.id;
  st.by_address[address_key(rec.host, rec.port)] = rec.id;
  st.presence[rec.id] = server_presence{rec.id, rec.state, false, rec.last_error};
}

/// Deletes the queued credentials unrecoverably, `max_erase_batch` ids per scrub, publishing their
/// credentials_deleted events. On failure the rest stays queued and a retry is scheduled.
void erase_queued(supervisor_actor* self) {
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
void queue_erasure(supervisor_actor* self, const std::string& id, const std::string& why) {
  auto& st = self->state;
  if (st.erasing.count(id) > 0) return;
  server_record r;
  r.id = id;
  if (auto rec = st.ctx->store->get_server(id); rec && *rec) r = **rec;
  st.erasures.push_back({id, make_event(r, "credentials_deleted", {{"reason", why}})});
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
std::unordered_set<std::string> erase_now(supervisor_actor* self,
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
      events.push_back(make_event(records[i], "credentials_deleted", {{"reason", why}}));
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

void grant_slots(supervisor_actor* self) {
  auto& st = self->state;
  auto cap = static_cast<size_t>(st.ctx->cfg.daemon.max_concurrent_handshakes);
  while (st.in_flight < cap && !st.waiting.empty()) {
    auto next = std::move(st.waiting.front());
    st.waiting.pop_front();
    if (st.ids.count(next.address()) == 0) continue;  // died while waiting
    ++st.in_flight;
    ++st.holders[next.address()];
    self->send(next, slot_atom::value);
  }
}

void load_fleet(supervisor_actor* self) {
  auto& st = self->state;
  // Finish credential deletions that a crash interrupted.
  std::vector<server_record> orphans;
  for (auto& id : st.ctx->store->credential_ids()) {
    auto rec = st.ctx->store->get_server(id);
    if (rec && *rec &&
        ((*rec)->state == server_state::pending_registration ||
         (*rec)->state == server_state::registering))
      continue;
    server_record orphan;
    orphan.id = id;
    if (rec && *rec) orphan = **rec;
    spdlog::info("server {}: deleting credentials left behind by an interrupted run", id);
    orphans.push_back(std::move(orphan));
  }
  erase_now(self, orphans, "cleanup at start: registration already finished");
  size_t count = 0;
  auto err = st.ctx->store->for_each_server([&](const server_record& rec) {
    if (rec.state != server_state::removed) {
      spawn_server(self, rec);
      ++count;
    }
    return true;
  });
  if (err) spdlog::error("cannot load servers: {}", describe(err));
  spdlog::info("loaded {} servers", count);
}

/// Addresses and ids taken by earlier entries of the batch being added: a batch must give the same
/// answers as the same adds one after the other.
struct batch_claims {
  std::unordered_map<std::string, std::string> by_address;
  std::unordered_set<std::string> ids;
};

caf::expected<server_record> validate_new_server(supervisor_actor* self,
                                                 const add_server_request& req,
                                                 const batch_claims& batch) {
  auto& st = self->state;
  if (req.host.empty()) return make_error(ec::invalid_argument, "the server's host is empty");
  if (req.port == 0) return make_error(ec::invalid_argument, "the server's port must be 1..65535");
  if (req.account.empty())
    return make_error(ec::invalid_argument,
                      "an account with the Backup Administrator role is required (--account)");
  if (req.password.empty())
    return make_error(ec::invalid_argument, "the account's password is empty");
  if (!req.expected && st.ctx->cfg.daemon.trust_policy == "expected-only")
    return make_error(ec::invalid_argument,
                      "trust_policy is expected-only: give the thumbprint verified out of band "
                      "with --expect-thumbprint SHA256");
  auto key = address_key(req.host, req.port);
  const std::string* owner = nullptr;
  if (auto it = st.by_address.find(key); it != st.by_address.end())
    owner = &it->second;
  else if (auto b = batch.by_address.find(key); b != batch.by_address.end())
    owner = &b->second;
  if (owner != nullptr)
    return make_error(ec::already_exists,
                      "server " + key + " is already known as " + *owner +
                          "; remove it first or give new credentials with 'certfleet server "
                          "credentials " +
                          *owner + "'");
  server_record rec;
  do {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "s-%08x", static_cast<unsigned>(st.ctx->random(0xffffffffu)));
    rec.id = buf;
  } while (st.servers.count(rec.id) > 0 || batch.ids.count(rec.id) > 0);
  rec.name = req.name.empty() ? key : req.name;
  rec.host = req.host;
  rec.port = req.port;
  rec.account = req.account;
  rec.expected = req.expected;
  rec.state = server_state::pending_registration;
  rec.created_ms = rec.updated_ms = st.ctx->now_ms();
  return rec;
}

add_server_results add_servers(supervisor_actor* self, const add_server_requests& reqs) {
  auto& st = self->state;
  add_server_results results;
  results.reserve(reqs.size());
  batch_claims batch;
  std::vector<size_t> accepted;  // indexes into `reqs` (and `results`) of the valid entries
  std::vector<server_record> records;
  std::vector<std::pair<std::string, sealed_blob>> credentials;
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto rec = validate_new_server(self, reqs[i], batch);
    if (!rec) {
      results.emplace_back(rec.error());
      continue;
    }
    auto blob = seal(st.ctx->sealing_key, rec->id, reqs[i].password);
    if (!blob) {
      results.emplace_back(blob.error());
      continue;
    }
    batch.by_address[address_key(rec->host, rec->port)] = rec->id;
    batch.ids.insert(rec->id);
    results.emplace_back(make_error(ec::storage_failure, "not stored yet"));
    accepted.push_back(i);
    credentials.emplace_back(rec->id, std::move(*blob));
    records.push_back(std::move(*rec));
  }
  if (records.empty()) return results;
  auto fail_all = [&](const caf::error& err) {
    for (auto i : accepted) results[i] = err;
    return results;
  };
  // Credentials first: a crash before the records leaves orphans that the next start deletes.
  if (auto err = st.ctx->store->put_credentials(credentials)) return fail_all(err);
  std::vector<event_record> events;
  events.reserve(2 * records.size());
  for (const auto& rec : records) {
    nlohmann::json added{{"name", rec.name}, {"account", rec.account}};
    if (rec.expected) added["expected_thumbprint"] = rec.expected->to_string();
    events.push_back(make_event(rec, "server_added", added));
    events.push_back(make_event(rec, "credentials_retained", {{"account", rec.account}}));
  }
  auto stored = st.ctx->store->put_servers(records, std::move(events));
  if (!stored) return fail_all(stored.error());
  publish(self, *stored);
  for (size_t k = 0; k < records.size(); ++k) {
    const auto& rec = records[k];
    spdlog::info("server {} ({}:{}) added", rec.id, rec.host, rec.port);
    spawn_server(self, rec);
    server_view v;
    v.record = rec;
    v.credentials_retained = true;
    results[accepted[k]] = std::move(v);
  }
  return results;
}

caf::result<server_view> add_server(supervisor_actor* self, const add_server_request& req) {
  auto results = add_servers(self, {req});
  if (!results.front()) return std::move(results.front().error());
  return std::move(*results.front());
}

caf::result<server_view> new_credentials(supervisor_actor* self, const std::string& id,
                                         const std::string& account, const secret_bytes& password) {
  auto& st = self->state;
  auto it = st.servers.find(id);
  if (it == st.servers.end()) return make_error(ec::not_found, "no server with id " + id);
  auto state = st.presence[id].state;
  if (state != server_state::auth_failed && state != server_state::pending_registration)
    return make_error(ec::invalid_state,
                      "server " + id + " is " + to_string(state) +
                          "; credentials are only needed before registration or after a denial");
  if (account.empty() || password.empty())
    return make_error(ec::invalid_argument, "both an account and a password are required");
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
        {make_event(**rec, "credentials_retained", {{"account", account}})});
    if (stored) publish(self, *stored);
  }
  self->delegate(it->second, credentials_atom::value, account);
  return caf::delegated<server_view>{};
}

template <class... Ts>
caf::result<server_view> route(supervisor_actor* self, const std::string& id, Ts... xs) {
  auto it = self->state.servers.find(id);
  if (it == self->state.servers.end())
    return make_error(ec::not_found,
                      "no server with id " + id + "; 'certfleet server list' shows them");
  self->delegate(it->second, xs...);
  return caf::delegated<server_view>{};
}

status_view make_status(supervisor_actor* self) {
  auto& st = self->state;
  status_view s;
  s.servers = st.servers.size();
  std::map<std::string, size_t> counts;
  for (auto& [id, p] : st.presence) {
    counts[to_string(p.state)]++;
    if (p.connected) s.connected++;
  }
  s.per_state.assign(counts.begin(), counts.end());
  auto& c = st.ctx->counters;
  s.handshakes = c.handshakes;
  s.handshake_failures = c.handshake_failures;
  s.resumed_handshakes = c.resumed_handshakes;
  s.collections = c.collections;
  s.handshake_latency = c.handshake_latency.summarize();
  s.collection_latency = c.collection_latency.summarize();
  s.handshake_buckets = c.handshake_latency.cumulate();
  s.collection_buckets = c.collection_latency.cumulate();
  s.last_event_seq = st.ctx->store->last_event_seq();
  s.last_errors.assign(st.last_errors.begin(), st.last_errors.end());
  s.manager_thumbprint = st.ctx->manager_identity.sha256().to_string();
  s.manager_not_after = st.ctx->manager_identity.summary().not_after;
  return s;
}

std::vector<server_view> make_list(supervisor_actor* self) {
  auto& st = self->state;
  std::vector<server_view> out;
  out.reserve(st.servers.size());
  auto creds = st.ctx->store->credential_ids();
  std::unordered_set<std::string> retained(creds.begin(), creds.end());
  st.ctx->store->for_each_server([&](const server_record& rec) {
    server_view v;
    v.record = rec;
    // The actor's live view: a failing connect is reported here, not written to the record.
    if (auto it = st.presence.find(rec.id); it != st.presence.end()) {
      v.connected = it->second.connected;
      v.record.last_error = it->second.last_error;
    }
    v.credentials_retained = retained.count(rec.id) > 0;
    out.push_back(std::move(v));
    return true;
  });
  return out;
}

/// Half the credential lifetime, between 1 and 10 seconds: an expiry is acted on promptly.
std::chrono::seconds sweep_period(const daemon_settings& cfg) {
  return std::chrono::seconds{std::clamp(cfg.credential_max_age_s / 2, 1, 10)};
}

void sweep_expired_credentials(supervisor_actor* self) {
  auto& st = self->state;
  auto max_age = st.ctx->cfg.daemon.credential_max_age_s;
  if (max_age > 0) {
    auto now = st.ctx->now_ms();
    std::vector<server_record> expired;
    for (auto& id : st.ctx->store->credential_ids()) {
      if (st.erasing.count(id) > 0) continue;  // already on its way out
      auto rec = st.ctx->store->get_server(id);
      if (!rec || !*rec || now - (*rec)->updated_ms < int64_t{max_age} * 1000) continue;
      expired.push_back(std::move(**rec));
    }
    auto why =
        "credentials expired after " + std::to_string(max_age) + " s without reaching the server";
    auto failed = erase_now(self, expired, why);
    for (const auto& rec : expired)
      if (failed.count(rec.id) == 0)
        if (auto it = st.servers.find(rec.id); it != st.servers.end())
          self->send(it->second, credentials_atom::value, remove_atom::value, why);
  }
  self->delayed_send(self, sweep_period(st.ctx->cfg.daemon), sweep_atom::value);
}

caf::behavior supervisor(supervisor_actor* self, context_ptr ctx) {
  self->state.ctx = std::move(ctx);
  self->set_down_handler([=](const caf::down_msg& down) {
    auto& st = self->state;
    auto it = st.ids.find(down.source);
    if (it == st.ids.end()) return;
    auto id = it->second;
    st.ids.erase(it);
    st.servers.erase(id);
    if (auto h = st.holders.find(down.source); h != st.holders.end()) {
      st.in_flight -= h->second;
      st.holders.erase(h);
      grant_slots(self);
    }
    if (st.stopping) return;
    auto rec = st.ctx->store->get_server(id);
    if (!rec || !*rec) {  // removed
      st.presence.erase(id);
      for (auto a = st.by_address.begin(); a != st.by_address.end(); ++a)
        if (a->second == id) {
          st.by_address.erase(a);
          break;
        }
      return;
    }
    spdlog::warn("server {}: its actor stopped ({}); restarting it in state {}", id,
                 self->system().render(down.reason), to_string((*rec)->state));
    spawn_server(self, **rec);
  });
  load_fleet(self);
  self->delayed_send(self, sweep_period(self->state.ctx->cfg.daemon), sweep_atom::value);
  return {
      [=](slot_atom) {
        auto& st = self->state;
        st.waiting.push_back(caf::actor_cast<caf::actor>(self->current_sender()));
        grant_slots(self);
      },
      [=](release_atom) {
        auto& st = self->state;
        auto h = st.holders.find(caf::actor_cast<caf::actor_addr>(self->current_sender()));
        if (h == st.holders.end() || h->second == 0) return;
        if (--h->second == 0) st.holders.erase(h);
        --st.in_flight;
        grant_slots(self);
      },
      [=](state_atom, const server_presence& p) {
        auto& st = self->state;
        auto& old = st.presence[p.id];
        if (!p.last_error.empty() && p.last_error != old.last_error) {
          st.last_errors.push_front(p.id + ": " + p.last_error);
          if (st.last_errors.size() > 10) st.last_errors.pop_back();
        }
        old = p;
      },
      [=](add_atom, const add_server_request& req) { return add_server(self, req); },
      [=](add_atom, const add_server_requests& reqs) { return add_servers(self, reqs); },
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
      [=](credentials_atom, const std::string& id, const std::string& account,
          const secret_bytes& password) { return new_credentials(self, id, account, password); },
      [=](trust_atom, const std::string& id, const thumbprint& t, const std::string& by) {
        return route(self, id, trust_atom::value, t, by);
      },
      [=](reject_atom, const std::string& id) { return route(self, id, reject_atom::value); },
      [=](show_atom, const std::string& id) { return route(self, id, show_atom::value); },
      [=](remove_atom, const std::string& id) -> caf::result<bool> {
        auto it = self->state.servers.find(id);
        if (it == self->state.servers.end())
          return make_error(ec::not_found, "no server with id " + id);
        self->delegate(it->second, remove_atom::value);
        return caf::delegated<bool>{};
      },
      [=](list_atom) { return make_list(self); },
      [=](status_atom) { return make_status(self); },
      [=](sweep_atom) { sweep_expired_credentials(self); },
      [=](stop_atom) {
        auto& st = self->state;
        st.stopping = true;
        // Queued deletions are finished now rather than by the next start's cleanup.
        erase_queued(self);
        for (auto& [id, a] : st.servers) self->send_exit(a, caf::exit_reason::user_shutdown);
        self->quit();
      },
  };
}

}  // namespace

caf::actor spawn_supervisor(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(supervisor, std::move(ctx));
}

}  // namespace certfleet
