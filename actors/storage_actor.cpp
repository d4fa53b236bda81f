#include "actors/storage_actor.hpp"

#include <chrono>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/events.hpp"
#include "actors/manager.hpp"
#include "common/failpoint.hpp"

namespace certfleet {
namespace {

using flush_atom = caf::atom_constant<caf::atom("flush")>;

/// One queued write and whom to answer.
struct queued_write {
  server_record rec;
  std::vector<event_record> events;
  bool durable = false;
  /// Empty for a write sent without a request: nobody waits for it.
  std::optional<caf::typed_response_promise<std::vector<event_record>>> promise;
};

struct storage_data {
  context_ptr ctx;
  std::vector<queued_write> queue;
  bool flush_scheduled = false;
  // What `status` summarises per server: when a trusted server was last collected (added, when
  // never) and when its pinned certificate expires; 0 where it does not apply. Read from the
  // store at the first status request, then kept current by the writes that pass here.
  struct status_entry {
    int64_t last_collection_ms = 0;
    int64_t certificate_not_after_ms = 0;
  };
  std::unordered_map<std::string, status_entry> status_entries;
  bool status_entries_loaded = false;
  static inline const char* name = "certfleet.storage";
};

using storage_actor = caf::stateful_actor<storage_data>;

/// Keeps `status_entries` current with a record being written.
void note(storage_data& st, const server_record& rec) {
  if (!st.status_entries_loaded) return;
  storage_data::status_entry e;
  if (rec.state == server_state::trusted)
    e.last_collection_ms = rec.last_collection_ms > 0 ? rec.last_collection_ms : rec.created_ms;
  if (rec.pinned) e.certificate_not_after_ms = rec.certificate_not_after_ms;
  if (e.last_collection_ms == 0 && e.certificate_not_after_ms == 0)
    st.status_entries.erase(rec.id);
  else
    st.status_entries[rec.id] = e;
}

/// Records how long one write to the store took.
template <class F>
auto timed_write(storage_data& st, F&& write) {
  auto start = std::chrono::steady_clock::now();
  auto result = write();
  st.ctx->counters.storage_write_latency.record(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                            start));
  return result;
}

storage_status read_status(storage_data& st) {
  if (!st.status_entries_loaded) {
    st.status_entries_loaded = true;
    auto err = st.ctx->store->for_each_server([&](const server_record& rec) {
      note(st, rec);
      return true;
    });
    if (err) spdlog::warn("cannot read the servers' last collections: {}", describe(err));
  }
  storage_status s;
  s.credentials_retained = st.ctx->store->credential_ids().size();
  auto warning_from =
      st.ctx->now_ms() + int64_t{st.ctx->cfg.identity.renewal_warning_days} * 24 * 3600 * 1000;
  for (const auto& [id, e] : st.status_entries) {
    if (e.last_collection_ms > 0 &&
        (s.oldest_collection_ms == 0 || e.last_collection_ms < s.oldest_collection_ms))
      s.oldest_collection_ms = e.last_collection_ms;
    if (e.certificate_not_after_ms > 0) {
      if (e.certificate_not_after_ms <= warning_from) ++s.certificates_expiring;
      if (s.earliest_certificate_not_after_ms == 0 ||
          e.certificate_not_after_ms < s.earliest_certificate_not_after_ms)
        s.earliest_certificate_not_after_ms = e.certificate_not_after_ms;
    }
  }
  return s;
}

void publish(storage_actor* self, const std::vector<event_record>& stored) {
  log_stored(stored);
  if (!stored.empty()) self->send(self->state.ctx->bus, published_atom::value, stored.back().seq);
}

void answer(queued_write& w, caf::expected<std::vector<event_record>> result) {
  if (!w.promise) return;
  if (result)
    w.promise->deliver(std::move(*result));
  else
    w.promise->deliver(std::move(result.error()));
}

/// Writes the queued batch: one fsynced store batch when any write must be durable, otherwise each
/// write to the log in order. Answers every writer.
void flush(storage_actor* self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.queue.empty()) return;
  auto batch = std::move(st.queue);
  st.queue.clear();
  bool durable = false;
  for (auto& w : batch) durable = durable || w.durable;
  if (!durable) {
    for (auto& w : batch) {
      note(st, w.rec);
      auto stored = timed_write(
          st, [&] { return st.ctx->store->put_server(w.rec, std::move(w.events), false); });
      if (!stored) {
        spdlog::error("server {}: cannot save its state: {}", w.rec.id, describe(stored.error()));
        answer(w, stored.error());
        continue;
      }
      publish(self, *stored);
      answer(w, std::move(*stored));
    }
    return;
  }
  std::vector<server_record> records;
  std::vector<event_record> events;
  std::vector<size_t> counts;
  records.reserve(batch.size());
  counts.reserve(batch.size());
  for (auto& w : batch) {
    note(st, w.rec);
    records.push_back(std::move(w.rec));
    counts.push_back(w.events.size());
    for (auto& e : w.events) events.push_back(std::move(e));
  }
  // Test builds can stall here, as a slow disk would, to show who waits for it.
  CERTFLEET_FAILPOINT("storage.before_group_commit");
  auto stored =
      timed_write(st, [&] { return st.ctx->store->put_servers(records, std::move(events)); });
  if (!stored) {
    spdlog::error("cannot save the state of {} servers (first {}): {}", records.size(),
                  records.front().id, describe(stored.error()));
    for (auto& w : batch) answer(w, stored.error());
    return;
  }
  publish(self, *stored);
  // A batch without events of its own still fsynced the events written before it without one:
  // the bus publishes only durable events, and would otherwise wait for the log syncer's next run.
  if (stored->empty())
    self->send(st.ctx->bus, published_atom::value, st.ctx->store->durable_event_seq());
  auto next = stored->begin();
  for (size_t i = 0; i < batch.size(); ++i) {
    auto end = next + static_cast<std::ptrdiff_t>(counts[i]);
    answer(batch[i], std::vector<event_record>(next, end));
    next = end;
  }
}

void enqueue(storage_actor* self, queued_write w) {
  auto& st = self->state;
  st.queue.push_back(std::move(w));
  if (!st.flush_scheduled) {
    st.flush_scheduled = true;
    self->send(self, flush_atom::value);
  }
}

caf::behavior storage(storage_actor* self, context_ptr ctx) {
  self->state.ctx = std::move(ctx);
  return {
      [=](persist_atom, server_record& rec, std::vector<event_record>& events) {
        enqueue(self, {std::move(rec), std::move(events), false, std::nullopt});
      },
      [=](persist_atom, server_record& rec, std::vector<event_record>& events, bool durable) {
        auto promise = self->make_response_promise<std::vector<event_record>>();
        enqueue(self, {std::move(rec), std::move(events), durable, promise});
        return promise;
      },
      [=](flush_atom) { flush(self); },
      [=](inventory_atom, const std::string& id, const std::string& json) {
        if (auto err = self->state.ctx->store->put_inventory(id, json))
          spdlog::error("server {}: cannot store inventory: {}", id, describe(err));
      },
      [=](remove_atom, const std::string& id,
          std::vector<event_record>& events) -> caf::result<std::vector<event_record>> {
        flush(self);  // earlier writes of the server first
        self->state.status_entries.erase(id);
        auto stored = self->state.ctx->store->remove_server(id, std::move(events));
        if (!stored) return stored.error();
        publish(self, *stored);
        return std::move(*stored);
      },
      [=](scrub_atom, const std::vector<std::string>& ids,
          std::vector<event_record>& events) -> caf::result<std::vector<event_record>> {
        flush(self);
        auto stored = self->state.ctx->store->erase_credentials(ids, std::move(events));
        if (!stored) return stored.error();
        publish(self, *stored);
        return std::move(*stored);
      },
      [=](add_atom, const std::vector<server_record>& records,
          std::vector<event_record>& events) -> caf::result<std::vector<event_record>> {
        flush(self);
        for (const auto& rec : records) note(self->state, rec);
        auto stored = self->state.ctx->store->put_servers(records, std::move(events));
        if (!stored) return stored.error();
        publish(self, *stored);
        return std::move(*stored);
      },
      [=](add_atom, std::vector<event_record>& events) {
        flush(self);
        auto stored = self->state.ctx->store->append_events(std::move(events));
        if (!stored)
          spdlog::error("cannot store events: {}", describe(stored.error()));
        else
          publish(self, *stored);
      },
      [=](meta_atom, const std::string& key, const std::string& value) {
        if (auto err = self->state.ctx->store->put_meta(key, value))
          spdlog::error("cannot store {}: {}", key, describe(err));
      },
      [=](show_atom, server_view& v) -> caf::result<server_view> {
        flush(self);  // the server's earlier writes first
        auto& store = *self->state.ctx->store;
        if (auto inventory = store.get_inventory(v.record.id); inventory && *inventory)
          v.inventory_json = std::move(**inventory);
        auto credential = store.get_credential(v.record.id);
        v.credentials_retained = credential && *credential;
        return std::move(v);
      },
      [=](caf::get_atom, const std::string& id) -> caf::result<server_record> {
        flush(self);  // the server's earlier writes first
        auto rec = self->state.ctx->store->get_server(id);
        if (!rec) return rec.error();
        if (!*rec) return make_error(ec::not_found, "no stored server with id " + id);
        return std::move(**rec);
      },
      [=](status_atom) {
        flush(self);
        return read_status(self->state);
      },
      [=](list_atom) -> caf::result<std::vector<server_view>> {
        flush(self);
        auto& store = *self->state.ctx->store;
        auto creds = store.credential_ids();
        std::unordered_set<std::string> retained(creds.begin(), creds.end());
        std::vector<server_view> out;
        auto err = store.for_each_server([&](const server_record& rec) {
          server_view v;
          v.record = rec;
          v.credentials_retained = retained.count(rec.id) > 0;
          out.push_back(std::move(v));
          return true;
        });
        if (err) return err;
        return out;
      },
      [=](trim_events_atom) {
        auto& st = self->state;
        const auto& d = st.ctx->cfg.daemon;
        int64_t min_time = st.ctx->now_ms() - int64_t{d.event_retention_days} * 86400 * 1000;
        if (auto err =
                st.ctx->store->trim_events(static_cast<size_t>(d.event_retention_count), min_time))
          spdlog::warn("cannot trim the event log: {}", describe(err));
      },
      [=](stop_atom) {
        flush(self);
        self->quit();
      },
  };
}

}  // namespace

caf::actor spawn_storage_actor(caf::actor_system& sys, context_ptr ctx, bool detached) {
  if (detached) return sys.spawn<caf::detached>(storage, std::move(ctx));
  return sys.spawn(storage, std::move(ctx));
}

}  // namespace certfleet
