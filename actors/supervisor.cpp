#include "actors/supervisor.hpp"

#include <algorithm>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/custody_actor.hpp"
#include "actors/events.hpp"
#include "actors/renewal_schedule.hpp"
#include "actors/server_actor.hpp"
#include "common/address.hpp"
#include "common/failpoint.hpp"
#include "protocol/session_forget.hpp"

namespace certfleet {
namespace {

/// One server of the fleet: its actor (none while a failed one is being restarted) and how it
/// stands, for `list` and `status`.
struct fleet_entry {
  caf::actor actor;
  server_state state = server_state::pending_registration;
  bool connected = false;
  std::string last_error;
};

struct supervisor_data {
  context_ptr ctx;
  fleet_services services;
  // The actor and the presence of a server share one entry: at 100,000 idle servers, the hash map
  // nodes are a tenth of the daemon's memory per server (benchmarks/RESULTS.md, "Idle servers
  // rest").
  std::unordered_map<std::string, fleet_entry> fleet;
  std::unordered_map<caf::actor_addr, std::string> ids;
  std::unordered_map<std::string, std::string> by_address;
  std::deque<std::string> last_errors;
  bool stopping = false;
  static inline const char* name = "certfleet.supervisor";
};

using supervisor_actor = caf::stateful_actor<supervisor_data>;

/// The actor of server `id`, or nullptr when it has none (unknown, or being restarted).
const caf::actor* actor_of(const supervisor_data& st, const std::string& id) {
  auto it = st.fleet.find(id);
  return it != st.fleet.end() && it->second.actor ? &it->second.actor : nullptr;
}

std::string address_key(const std::string& host, uint16_t port) {
  return normalised_address(host, port);
}

void spawn_server(supervisor_actor* self, const server_record& rec) {
  auto& st = self->state;
  server_peers peers{caf::actor_cast<caf::actor>(self), st.services.admission, st.services.custody};
  auto a = spawn_server_actor(self->system(), st.ctx, std::move(peers), rec);
  self->monitor(a);
  st.ids[a.address()] = rec.id;
  st.by_address[address_key(rec.host, rec.port)] = rec.id;
  st.fleet[rec.id] = fleet_entry{std::move(a), rec.state, false, rec.last_error};
}

void load_fleet(supervisor_actor* self) {
  auto& st = self->state;
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
  if (!req.expected && st.ctx->cfg.daemon.trust_policy == trust_policy::expected_only)
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
  } while (st.fleet.count(rec.id) > 0 || batch.ids.count(rec.id) > 0);
  rec.name = req.name.empty() ? key : req.name;
  rec.host = req.host;
  rec.port = req.port;
  rec.account = req.account;
  rec.expected = req.expected;
  rec.state = server_state::pending_registration;
  rec.created_ms = rec.updated_ms = st.ctx->now_ms();
  return rec;
}

/// Adds the valid entries of `reqs` and calls `done` with one result per request: their
/// credentials go to the custody actor, then their records and events to the storage actor in one
/// fsynced batch (credentials first: a crash before the records leaves orphans that the next start
/// deletes), and only then are their actors spawned. The registry handles nothing else meanwhile,
/// so a later add sees these addresses taken.
void add_servers(supervisor_actor* self, const add_server_requests& reqs,
                 std::function<void(add_server_results)> done) {
  auto& st = self->state;
  add_server_results results;
  results.reserve(reqs.size());
  batch_claims batch;
  std::vector<size_t> accepted;  // indexes into `reqs` (and `results`) of the valid entries
  std::vector<server_record> records;
  sealed_credentials credentials;
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
  if (records.empty()) {
    done(std::move(results));
    return;
  }
  auto fail_all = [=](const caf::error& err) {
    auto out = results;
    for (auto i : accepted) out[i] = err;
    done(std::move(out));
  };
  std::vector<event_record> events;
  events.reserve(2 * records.size());
  for (const auto& rec : records) {
    nlohmann::json added{{"name", rec.name}, {"account", rec.account}};
    if (rec.expected) added["expected_thumbprint"] = rec.expected->to_string();
    events.push_back(make_event(rec, event_type::server_added, added));
    events.push_back(make_event(rec, event_type::credentials_retained, {{"account", rec.account}}));
  }
  self->request(st.services.custody, caf::infinite, credentials_atom::value, add_atom::value,
                std::move(credentials))
      .await(
          [=](bool) {
            self->request(self->state.ctx->storage, caf::infinite, add_atom::value, records, events)
                .await(
                    [=](const std::vector<event_record>&) {
                      auto out = results;
                      for (size_t k = 0; k < records.size(); ++k) {
                        const auto& rec = records[k];
                        spdlog::info("server {} ({}) added", rec.id,
                                     format_address(rec.host, rec.port));
                        // A session kept for this address belongs to a removed server and to
                        // whatever identity it had then: resuming it would skip the certificate
                        // the new server presents.
                        forget_client_session(*self->state.ctx->sessions, rec.host, rec.port);
                        spawn_server(self, rec);
                        server_view v;
                        v.record = rec;
                        v.credentials_retained = true;
                        out[accepted[k]] = std::move(v);
                      }
                      done(std::move(out));
                    },
                    [=](caf::error& err) { fail_all(err); });
          },
          [=](caf::error& err) { fail_all(err); });
}

caf::result<server_view> new_credentials(supervisor_actor* self, const std::string& id,
                                         const std::string& account, const secret_bytes& password) {
  auto& st = self->state;
  auto* actor = actor_of(st, id);
  if (!actor) return make_error(ec::not_found, "no server with id " + id);
  auto state = st.fleet[id].state;
  if (state != server_state::auth_failed && state != server_state::pending_registration &&
      state != server_state::reregistration_required && state != server_state::certificate_mismatch)
    return make_error(ec::invalid_state, "server " + id + " is " + to_string(state) +
                                             "; credentials are only needed before registration, "
                                             "after a denial, to register a mismatched server "
                                             "again or after a missed certificate renewal");
  if (account.empty() || password.empty())
    return make_error(ec::invalid_argument, "both an account and a password are required");
  auto promise = self->make_response_promise<server_view>();
  auto server = *actor;
  self->request(st.services.custody, caf::infinite, credentials_atom::value, id, account, password)
      .await([=](bool) mutable { promise.delegate(server, credentials_atom::value, account); },
             [=](caf::error& err) mutable { promise.deliver(std::move(err)); });
  return promise;
}

template <class... Ts>
caf::result<server_view> route(supervisor_actor* self, const std::string& id, Ts... xs) {
  auto* actor = actor_of(self->state, id);
  if (!actor)
    return make_error(ec::not_found,
                      "no server with id " + id + "; 'certfleet server list' shows them");
  self->delegate(*actor, xs...);
  return caf::delegated<server_view>{};
}

status_view make_status(supervisor_actor* self) {
  auto& st = self->state;
  status_view s;
  s.servers = st.ids.size();
  std::map<std::string, size_t> counts;
  for (auto& [id, p] : st.fleet) {
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
  s.storage_write_latency = c.storage_write_latency.summarize();
  s.storage_write_buckets = c.storage_write_latency.cumulate();
  s.subscribers = c.subscribers;
  s.last_event_seq = st.ctx->store->last_event_seq();
  s.last_errors.assign(st.last_errors.begin(), st.last_errors.end());
  auto current = st.ctx->identities->current();
  s.manager_thumbprint = current.sha256().to_string();
  s.manager_not_after = current.summary().not_after;
  auto renewal =
      renewal_schedule{current.not_after(), s.manager_thumbprint, renewal_policy_of(st.ctx->cfg)}
          .status(wall_time{std::chrono::milliseconds{st.ctx->now_ms()}});
  s.manager_days_left = renewal.days_left;
  s.manager_renewal_due = renewal.renewal_due;
  return s;
}

/// `make_status` with what the storage actor reads from the store (retained credentials, the
/// oldest collection) on its own thread.
caf::result<status_view> status(supervisor_actor* self) {
  auto promise = self->make_response_promise<status_view>();
  self->request(self->state.ctx->storage, caf::infinite, status_atom::value)
      .then(
          [=](const storage_status& stored) mutable {
            auto s = make_status(self);
            s.credentials_retained = stored.credentials_retained;
            s.server_certificates_expiring = stored.certificates_expiring;
            s.server_certificate_earliest_not_after_ms = stored.earliest_certificate_not_after_ms;
            if (stored.oldest_collection_ms > 0)
              s.oldest_collection_age_s = std::max<int64_t>(
                  0, (self->state.ctx->now_ms() - stored.oldest_collection_ms) / 1000);
            promise.deliver(std::move(s));
          },
          [=](caf::error& err) mutable { promise.deliver(std::move(err)); });
  return promise;
}

/// The stored fleet, read by the storage actor on its own thread, with the live presence added.
caf::result<std::vector<server_view>> make_list(supervisor_actor* self) {
  auto promise = self->make_response_promise<std::vector<server_view>>();
  self->request(self->state.ctx->storage, caf::infinite, list_atom::value)
      .then(
          [=](std::vector<server_view>& views) mutable {
            auto& st = self->state;
            // The actor's live view: a failing connect is reported here, not written to the record.
            for (auto& v : views)
              if (auto it = st.fleet.find(v.record.id); it != st.fleet.end()) {
                v.connected = it->second.connected;
                v.record.last_error = it->second.last_error;
              }
            promise.deliver(std::move(views));
          },
          [=](caf::error& err) mutable { promise.deliver(std::move(err)); });
  return promise;
}

/// Forgets a server whose record is gone (removed while its actor stopped).
void forget(supervisor_actor* self, const std::string& id) {
  auto& st = self->state;
  st.fleet.erase(id);
  for (auto a = st.by_address.begin(); a != st.by_address.end(); ++a)
    if (a->second == id) {
      st.by_address.erase(a);
      break;
    }
}

/// Respawns the actor of server `id`, which stopped for `reason`, from its record. The storage
/// actor reads it on its own thread, after every write it had queued (the stopped actor's last
/// ones included); until it answers, requests for this server answer that it does not exist.
void restart(supervisor_actor* self, const std::string& id, const caf::error& reason) {
  self->request(self->state.ctx->storage, caf::infinite, caf::get_atom::value, id)
      .then(
          [=](server_record& rec) {
            auto& st = self->state;
            if (st.stopping || actor_of(st, id)) return;
            if (rec.state == server_state::removed) {
              forget(self, id);
              return;
            }
            spdlog::warn("server {}: its actor stopped ({}); restarting it in state {}", id,
                         self->system().render(reason), to_string(rec.state));
            spawn_server(self, rec);
          },
          [=](caf::error& err) {
            if (code_of(err) == ec::not_found) {
              forget(self, id);
              return;
            }
            // Still listed, its address still taken: the record exists, the disk failed.
            auto& p = self->state.fleet[id];
            p.connected = false;
            p.last_error = "its actor stopped and its record cannot be read (" + describe(err) +
                           "); restart the daemon";
            spdlog::error("server {}: {}", id, p.last_error);
          });
}

caf::behavior supervisor(supervisor_actor* self, context_ptr ctx, fleet_services services) {
  self->state.ctx = std::move(ctx);
  self->state.services = std::move(services);
  self->set_down_handler([=](const caf::down_msg& down) {
    auto& st = self->state;
    auto it = st.ids.find(down.source);
    if (it == st.ids.end()) return;
    auto id = it->second;
    st.ids.erase(it);
    if (auto e = st.fleet.find(id); e != st.fleet.end()) e->second.actor = nullptr;
    if (!st.stopping) restart(self, id, down.reason);
  });
  load_fleet(self);
  return {
      [=](state_atom, const server_presence& p) {
        auto& st = self->state;
        auto e = st.fleet.find(p.id);
        if (e == st.fleet.end()) return;  // removed meanwhile
        auto& old = e->second;
        if (!p.last_error.empty() && p.last_error != old.last_error) {
          st.last_errors.push_front(p.id + ": " + p.last_error);
          if (st.last_errors.size() > 10) st.last_errors.pop_back();
        }
        old.state = p.state;
        old.connected = p.connected;
        old.last_error = p.last_error;
      },
      [=](add_atom, const add_server_request& req) {
        auto promise = self->make_response_promise<server_view>();
        add_servers(self, {req}, [=](add_server_results results) mutable {
          if (!results.front())
            promise.deliver(std::move(results.front().error()));
          else
            promise.deliver(std::move(*results.front()));
        });
        return promise;
      },
      [=](add_atom, const add_server_requests& reqs) {
        auto promise = self->make_response_promise<add_server_results>();
        add_servers(self, reqs, [=](add_server_results results) mutable {
          promise.deliver(std::move(results));
        });
        return promise;
      },
      [=](credentials_atom, remove_atom, const std::vector<std::string>& ids,
          const std::string& why) {
        // The custody actor destroyed expired credentials: their servers stop waiting for them.
        for (auto& id : ids)
          if (auto* actor = actor_of(self->state, id))
            self->send(*actor, credentials_atom::value, remove_atom::value, why);
      },
      [=](credentials_atom, const std::string& id, const std::string& account,
          const secret_bytes& password) { return new_credentials(self, id, account, password); },
      [=](trust_atom, const std::string& id, const thumbprint& t, const std::string& by) {
        return route(self, id, trust_atom::value, t, by);
      },
      [=](reject_atom, const std::string& id) { return route(self, id, reject_atom::value); },
      [=](show_atom, const std::string& id) { return route(self, id, show_atom::value); },
      [=](remove_atom, const std::string& id) -> caf::result<bool> {
        auto* actor = actor_of(self->state, id);
        if (!actor) return make_error(ec::not_found, "no server with id " + id);
        self->delegate(*actor, remove_atom::value);
        return caf::delegated<bool>{};
      },
      [=](forward_atom, const std::vector<std::string>& ids, const caf::message& msg) {
        // To the listed servers' actors, or to every one for an empty list (rotation nudges).
        auto& st = self->state;
        if (ids.empty()) {
          for (auto& [id, e] : st.fleet)
            if (e.actor) self->send(e.actor, msg);
          return;
        }
        for (auto& id : ids)
          if (auto* actor = actor_of(st, id)) self->send(*actor, msg);
      },
      [=](list_atom) { return make_list(self); },
      [=](status_atom) {
        // Test builds can stall here, as a stuck scheduler would (the watchdog test).
        CERTFLEET_FAILPOINT("supervisor.status");
        return status(self);
      },
      [=](stop_atom) {
        auto& st = self->state;
        st.stopping = true;
        for (auto& [id, e] : st.fleet)
          if (e.actor) self->send_exit(e.actor, caf::exit_reason::user_shutdown);
        self->quit();
      },
  };
}

}  // namespace

caf::actor spawn_supervisor(caf::actor_system& sys, context_ptr ctx, fleet_services services) {
  auto registry = sys.spawn(supervisor, std::move(ctx), services);
  caf::anon_send(services.custody, registry_atom::value, registry);
  return registry;
}

}  // namespace certfleet
