#include "agent/server.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <future>
#include <mutex>

#include <spdlog/spdlog.h>

#include "agent/event_loop.hpp"
#include "common/fs.hpp"

namespace certfleet::agent {

// --- the server -------------------------------------------------------------------------------

agent_server::agent_server(server_options options, std::vector<std::unique_ptr<endpoint>> endpoints,
                           std::vector<listen_address> addresses)
    : impl_(std::make_unique<impl>()) {
  impl_->opts = options;
  impl_->self = this;
  impl_->slots.resize(endpoints.size());
  for (size_t i = 0; i < endpoints.size(); ++i) {
    impl_->thumbs.push_back(endpoints[i]->current_identity().sha256());
    impl_->slots[i].ep = std::move(endpoints[i]);
    if (i < addresses.size()) impl_->slots[i].addr = addresses[i];
  }
}

agent_server::~agent_server() {
  stop();
}

caf::error agent_server::start() {
  auto& s = *impl_;
  size_t threads = std::max<size_t>(1, std::min(s.opts.threads, s.slots.size()));
  for (size_t i = 0; i < s.slots.size(); ++i) {
    s.slots[i].worker = i % threads;
    if (s.slots[i].ep->faults().offline) continue;
    if (auto err = s.listen_slot(i)) {
      s.close_all_fds();
      return err;
    }
  }
  for (size_t w = 0; w < threads; ++w) {
    auto wk = std::make_unique<worker>();
    wk->srv = impl_.get();
    wk->index = w;
    wk->epfd = ::epoll_create1(EPOLL_CLOEXEC);
    wk->wakefd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wk->epfd < 0 || wk->wakefd < 0) {
      int err = errno;
      s.workers.push_back(std::move(wk));
      s.close_all_fds();
      return make_error(ec::io_error, "cannot create the event loop: " + errno_text(err));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = wake_tag;
    ::epoll_ctl(wk->epfd, EPOLL_CTL_ADD, wk->wakefd, &ev);
    s.workers.push_back(std::move(wk));
  }
  for (size_t i = 0; i < s.slots.size(); ++i) {
    if (s.slots[i].listen_fd < 0) continue;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = listen_tag | i;
    ::epoll_ctl(s.workers[s.slots[i].worker]->epfd, EPOLL_CTL_ADD, s.slots[i].listen_fd, &ev);
  }
  s.running = true;
  for (auto& w : s.workers) w->thread = std::thread([wp = w.get()] { wp->run(); });
  return {};
}

void agent_server::stop() {
  auto& s = *impl_;
  if (s.running.exchange(false)) {
    for (auto& w : s.workers) {
      uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(w->wakefd, &one, sizeof one);
    }
    for (auto& w : s.workers)
      if (w->thread.joinable()) w->thread.join();
  }
  s.close_all_fds();
}

size_t agent_server::size() const {
  return impl_->slots.size();
}

listen_address agent_server::address(size_t i) const {
  std::lock_guard<std::mutex> lock(impl_->snapshot_mu);
  return impl_->slots.at(i).addr;
}

thumbprint agent_server::current_thumbprint(size_t i) const {
  std::lock_guard<std::mutex> lock(impl_->snapshot_mu);
  return impl_->thumbs.at(i);
}

size_t agent_server::connection_count() const {
  return impl_->connections.load();
}

caf::error agent_server::impl::apply(size_t i, const fault_command& cmd) {
  auto& sl = slots[i];
  auto& ep = *sl.ep;
  auto& f = ep.faults();
  auto& w = *workers[sl.worker];
  auto go_offline = [&] {
    f.offline = true;
    if (sl.listen_fd >= 0) {
      ::epoll_ctl(w.epfd, EPOLL_CTL_DEL, sl.listen_fd, nullptr);
      ::close(sl.listen_fd);
      sl.listen_fd = -1;
    }
    w.close_endpoint_connections(i, "the endpoint went offline (fault)");
  };
  auto go_online = [&]() -> caf::error {
    if (sl.listen_fd < 0)
      if (auto err = listen_slot(i)) return err;
    f.offline = false;
    return {};
  };
  switch (cmd.kind) {
    case fault_kind::offline:
      go_offline();
      break;
    case fault_kind::online:
      if (auto err = go_online()) return err;
      break;
    case fault_kind::regenerate: {
      if (!ep.regenerate)
        return make_error(ec::invalid_state,
                          "endpoint " + std::to_string(i) + " cannot regenerate its certificate");
      auto id = ep.regenerate(ep);
      if (!id) return id.error();
      ep.replace_identity(*id);
      spdlog::info("endpoint {}: new certificate {}", ep.options().index, id->sha256().to_string());
      w.close_stale_sessions(i);
      if (self->on_identity_changed) self->on_identity_changed(i);
      break;
    }
    case fault_kind::stall:
      f.stall = true;
      break;
    case fault_kind::slow_handshake:
      f.slow = milliseconds{static_cast<int64_t>(cmd.value)};
      break;
    case fault_kind::drop_after:
      f.drop_after_bytes = cmd.value;
      break;
    case fault_kind::deny_registrations:
      f.deny_registrations = true;
      break;
    case fault_kind::accept_registrations:
      f.deny_registrations = false;
      break;
    case fault_kind::clear:
      f.stall = false;
      f.slow = milliseconds{0};
      f.drop_after_bytes = 0;
      f.deny_registrations = false;
      if (auto err = go_online()) return err;
      break;
  }
  spdlog::info("endpoint {}: fault {} applied", ep.options().index, to_string(cmd.kind));
  return {};
}

caf::error agent_server::apply_fault(size_t i, const fault_command& cmd) {
  auto& s = *impl_;
  if (i >= s.slots.size())
    return make_error(ec::invalid_argument, "there is no endpoint " + std::to_string(i) +
                                                "; this process has " +
                                                std::to_string(s.slots.size()));
  if (!s.running) return make_error(ec::invalid_state, "the agent is not running");
  return s.on_owner<caf::error>(i, [&s, i, cmd] { return s.apply(i, cmd); });
}

caf::error agent_server::apply_fault_all(const fault_command& cmd) {
  auto& s = *impl_;
  if (!s.running) return make_error(ec::invalid_state, "the agent is not running");
  std::vector<std::future<caf::error>> results;
  for (auto& w : s.workers) {
    auto task = std::make_shared<std::packaged_task<caf::error()>>([&s, wi = w->index, cmd] {
      caf::error first;
      for (size_t i = 0; i < s.slots.size(); ++i) {
        if (s.slots[i].worker != wi) continue;
        if (auto err = s.apply(i, cmd)) {
          spdlog::error("endpoint {}: fault {} failed: {}", i, to_string(cmd.kind), describe(err));
          if (!first) first = err;
        }
      }
      return first;
    });
    results.push_back(task->get_future());
    w->post([task] { (*task)(); });
  }
  caf::error first;
  for (auto& r : results) {
    auto err = r.get();
    if (err && !first) first = err;
  }
  return first;
}

caf::expected<bool> agent_server::revoke_manager(size_t i, const thumbprint& t) {
  auto& s = *impl_;
  if (i >= s.slots.size() || !s.running)
    return make_error(ec::invalid_argument, "there is no running endpoint " + std::to_string(i));
  return s.on_owner<caf::expected<bool>>(i, [&s, i, t]() -> caf::expected<bool> {
    auto removed = s.slots[i].ep->revoke(t);
    if (!removed || !*removed) return removed;
    auto& w = *s.workers[s.slots[i].worker];
    std::vector<uint64_t> ids;
    for (auto& [id, c] : w.conns)
      if (c->slot == i && c->tls && c->tls->peer_thumbprint() == t) ids.push_back(id);
    for (auto id : ids) {
      auto it = w.conns.find(id);
      if (it == w.conns.end()) continue;
      w.refuse(*it->second, wire::denial_reason::manager_revoked,
               "the registration of manager " + t.to_string() +
                   " was revoked on this backup server; register it again to reconnect");
    }
    spdlog::info("endpoint {}: manager {} revoked", s.slots[i].ep->options().index, t.to_string());
    return true;
  });
}

caf::expected<std::vector<thumbprint>> agent_server::managers(size_t i) {
  auto& s = *impl_;
  if (i >= s.slots.size() || !s.running)
    return make_error(ec::invalid_argument, "there is no running endpoint " + std::to_string(i));
  return s.on_owner<caf::expected<std::vector<thumbprint>>>(
      i, [&s, i]() -> caf::expected<std::vector<thumbprint>> {
        const auto& m = s.slots[i].ep->managers();
        return std::vector<thumbprint>(m.begin(), m.end());
      });
}

}  // namespace certfleet::agent
