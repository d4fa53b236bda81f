#include "actors/manager.hpp"

#include <algorithm>
#include <cstdlib>
#include <thread>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/admission_actor.hpp"
#include "actors/atoms.hpp"
#include "actors/context.hpp"
#include "actors/custody_actor.hpp"
#include "actors/event_bus.hpp"
#include "actors/io_broker.hpp"
#include "actors/renewal_actor.hpp"
#include "actors/rotation_actor.hpp"
#include "actors/storage_actor.hpp"
#include "actors/supervisor.hpp"
#include "actors/timer_actor.hpp"
#include "common/fs.hpp"
#include "config/state_layout.hpp"
#include "crypto/certificate_store.hpp"
#include "storage/master_key_guard.hpp"

namespace certfleet {
namespace {

class manager_impl final : public manager {
 public:
  manager_impl(context_ptr ctx, std::unique_ptr<caf::actor_system_config> cfg)
      : ctx_(std::move(ctx)), sys_cfg_(std::move(cfg)) {
    sys_ = std::make_unique<caf::actor_system>(*sys_cfg_);
    ctx_->broker = sys_->middleman().spawn_broker(io_broker, default_read_chunk);
    ctx_->bus = spawn_event_bus(*sys_, ctx_);
    ctx_->storage = spawn_storage_actor(*sys_, ctx_);
    // Events written without their own fsync are published once the log syncer made them durable.
    ctx_->store->on_events_durable(
        [bus = ctx_->bus](uint64_t seq) { caf::anon_send(bus, published_atom::value, seq); });
    admission_ = spawn_admission_actor(
        *sys_, static_cast<size_t>(ctx_->cfg.daemon.max_concurrent_handshakes));
    custody_ = spawn_custody_actor(*sys_, ctx_);
    ctx_->rotation = spawn_rotation_actor(*sys_, ctx_);
    // Before the registry: the server actors it spawns report their pinned certificates to it.
    renewal_ = spawn_renewal_actor(*sys_, ctx_);
    ctx_->renewal = renewal_;
    supervisor_ = spawn_supervisor(*sys_, ctx_, fleet_services{admission_, custody_});
    caf::anon_send(ctx_->rotation, registry_atom::value, supervisor_);
    auto jobs = daemon_jobs(ctx_->cfg.daemon, custody_, ctx_->storage);
    jobs.push_back({"renewal prompt", renewal_tick, renewal_, caf::make_message(tick_atom::value)});
    jobs.push_back({"manager certificate rotation", renewal_tick, ctx_->rotation,
                    caf::make_message(tick_atom::value)});
    timer_ = spawn_timer_actor(*sys_, std::move(jobs));
  }

  ~manager_impl() override { stop(); }

  caf::expected<server_view> add_server(add_server_request req) override {
    return ask<server_view>(add_atom::value, std::move(req));
  }

  std::vector<caf::expected<server_view>> add_servers(
      std::vector<add_server_request> reqs) override {
    auto n = reqs.size();
    if (n == 0) return {};
    auto r = ask<add_server_results>(add_atom::value, std::move(reqs));
    if (r) return std::move(*r);
    return std::vector<caf::expected<server_view>>(n, r.error());
  }

  caf::expected<server_view> trust(const std::string& id, const thumbprint& presented,
                                   const std::string& by) override {
    return ask<server_view>(trust_atom::value, id, presented, by);
  }

  caf::expected<server_view> reject(const std::string& id) override {
    return ask<server_view>(reject_atom::value, id);
  }

  caf::error remove(const std::string& id) override {
    auto r = ask<bool>(remove_atom::value, id);
    return r ? caf::error{} : r.error();
  }

  caf::expected<server_view> set_credentials(const std::string& id, std::string account,
                                             secret_bytes password) override {
    return ask<server_view>(credentials_atom::value, id, std::move(account), std::move(password));
  }

  caf::expected<std::vector<server_view>> list() override {
    return ask<std::vector<server_view>>(list_atom::value);
  }

  caf::expected<server_view> show(const std::string& id) override {
    return ask<server_view>(show_atom::value, id);
  }

  status_view status() override {
    auto s = ask<status_view>(status_atom::value);
    return s ? *s : status_view{};
  }

  caf::expected<rotation_view> renew_certificate(std::string friendly_name) override {
    return ask_actor<rotation_view>(ctx_->rotation, renew_atom::value, std::move(friendly_name));
  }

  caf::expected<rotation_view> rotation_status() override {
    return ask_actor<rotation_view>(ctx_->rotation, rotation_atom::value, status_atom::value);
  }

  caf::expected<std::unique_ptr<event_subscription>> subscribe(uint64_t since, event_filter filter,
                                                               event_fn on_event,
                                                               cutoff_fn on_cutoff,
                                                               size_t queue_events) override {
    if (stopped_) return make_error(ec::invalid_state, "the manager is stopped");
    return subscribe_events(*sys_, ctx_->bus, since, std::move(filter), std::move(on_event),
                            std::move(on_cutoff), queue_events);
  }

  void stop() override {
    std::lock_guard<std::mutex> guard{stop_mtx_};
    if (stopped_) return;
    stopped_ = true;
    ctx_->store->on_events_durable({});  // before the bus and its actor system go away
    {
      // In order: the registry stops the server actors; the custody actor then finishes its queued
      // credential deletions; the storage actor last, with the writes of everyone before.
      caf::scoped_actor self{*sys_};
      for (auto* a : {&timer_, &renewal_, &ctx_->rotation, &supervisor_, &custody_, &admission_,
                      &ctx_->storage}) {
        self->monitor(*a);
        self->send(*a, stop_atom::value);
        self->receive(
            [](const caf::down_msg&) {},
            caf::after(std::chrono::seconds{30}) >>
                [] { spdlog::warn("an actor did not stop within 30 s; stopping the rest"); });
      }
    }
    caf::anon_send(ctx_->bus, stop_atom::value);
    caf::anon_send(ctx_->broker, stop_atom::value);
    sys_->await_all_actors_done();
    ctx_->connect_to = nullptr;
    ctx_->connect.reset();  // joins the connector thread
    supervisor_ = admission_ = custody_ = timer_ = renewal_ = caf::actor{};
    ctx_->bus = ctx_->broker = ctx_->storage = ctx_->rotation = ctx_->renewal = caf::actor{};
    sys_.reset();
    if (auto err = ctx_->sessions->save(state_layout{ctx_->cfg.state_dir}.tls_sessions_file(),
                                        ctx_->sealing_key))
      spdlog::warn("TLS sessions not saved, the next start does full handshakes: {}",
                   describe(err));
    ctx_->store.reset();  // flushes and closes the database
    spdlog::info("manager stopped");
  }

 private:
  template <class T, class... Ts>
  caf::expected<T> ask(Ts&&... xs) {
    return ask_actor<T>(supervisor_, std::forward<Ts>(xs)...);
  }

  template <class T, class... Ts>
  caf::expected<T> ask_actor(const caf::actor& target, Ts&&... xs) {
    if (stopped_) return make_error(ec::invalid_state, "the manager is stopped");
    caf::scoped_actor self{*sys_};
    caf::expected<T> result{make_error(ec::timeout, "the manager did not answer in time")};
    auto timeout = std::chrono::milliseconds{ctx_->cfg.daemon.request_timeout_ms};
    self->request(target, timeout, std::forward<Ts>(xs)...)
        .receive([&](T& value) { result = std::move(value); },
                 [&](caf::error& err) {
                   if (err.category() == caf::atom("certfleet"))
                     result = std::move(err);
                   else
                     result = make_error(ec::timeout,
                                         "the manager did not answer: " + sys_->render(err));
                 });
    return result;
  }

  context_ptr ctx_;
  std::unique_ptr<caf::actor_system_config> sys_cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  caf::actor supervisor_;
  caf::actor admission_;
  caf::actor custody_;
  caf::actor timer_;
  caf::actor renewal_;
  std::mutex stop_mtx_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

caf::expected<std::unique_ptr<manager>> manager::start(const settings& cfg) {
  state_layout layout{cfg.state_dir};
  if (!std::filesystem::exists(layout.root) || !std::filesystem::exists(layout.certs_dir()))
    return make_error(ec::not_found, "state directory " + layout.root.string() +
                                         " is not initialised; run 'certfleet --state-dir " +
                                         layout.root.string() + " init' first");
  if (auto err = check_private_directory(layout.root)) return err;
  auto db = state_store::open(layout.db_dir());
  if (!db) return db.error();
  // The key may live outside the state directory (identity.master_key_file) or come from systemd
  // (LoadCredential=master.key); a missing or wrong key with sealed data present is refused.
  auto where = locate_master_key(cfg, std::getenv("CREDENTIALS_DIRECTORY"));
  auto key = load_master_key(where.file, where.description, **db, layout.tls_sessions_file());
  if (!key) return key.error();
  auto store = certificate_store::open(layout.certs_dir(), false, cfg.identity.store_group);
  if (!store) return store.error();
  auto id = store->load_current();
  if (!id) return id.error();
  // During a rotation the previous identity is loaded too (actors/rotation_actor.hpp).
  auto identities = open_manager_identities(*store, **db, *id);
  if (!identities) return identities.error();
  auto fds = raise_fd_limit();
  auto servers = (*db)->server_count();
  spdlog::info("state {}: {} servers; open-file limit {}", layout.root.string(), servers, fds);
  auto ctx = std::make_shared<daemon_context>(cfg, std::move(*key), std::move(*id));
  ctx->store = std::move(*db);
  ctx->identities = std::move(*identities);
  ctx->sessions = std::make_shared<tls_session_cache>(std::max<size_t>(100000, 2 * servers));
  if (auto n = ctx->sessions->load(layout.tls_sessions_file(), ctx->sealing_key); !n)
    spdlog::warn("{}", describe(n.error()));
  else if (*n > 0)
    spdlog::info("{} TLS sessions restored from the last orderly stop", *n);
  forget_rotated_sessions(*ctx->store, *ctx->sessions);
  ctx->connect = std::make_unique<connector>();
  ctx->connect_to = [c = ctx->connect.get()](const std::string& host, uint16_t port,
                                             std::chrono::milliseconds deadline,
                                             connector::done_fn done) {
    c->connect(host, port, deadline, std::move(done));
  };
  auto sys_cfg = std::make_unique<caf::actor_system_config>();
  sys_cfg->load<caf::io::middleman>();
  // CAF's own log and console output stay quiet; certfleet logs through spdlog.
  sys_cfg->set("logger.console-verbosity", caf::atom("quiet"));
  // One worker per core and a shared queue whose idle workers sleep on a condition variable. CAF
  // 0.17's default (work stealing, at least 4 workers) polls: on 2 cores an idle daemon with
  // 20,000 servers burned 18 % of a core, a shutdown of 100,000 took 7-16 s instead of 1-7 s, and
  // the polling workers take CPU from the TLS work of a connect storm (benchmarks/RESULTS.md).
  sys_cfg->set("scheduler.policy", caf::atom("sharing"));
  sys_cfg->set("scheduler.max-threads",
               static_cast<size_t>(std::max(1u, std::thread::hardware_concurrency())));
  return std::unique_ptr<manager>{new manager_impl(std::move(ctx), std::move(sys_cfg))};
}

}  // namespace certfleet
