// Internal to agent/: the event loop behind `agent_server` (agent/server.hpp has the contract).
// One `worker` per thread owns an epoll set, the listening sockets of its endpoints (`slot`s) and
// every connection accepted from them; nothing here is shared between workers except through
// `post` (a task queue woken by an eventfd). Deadlines are swept every 100 ms.
#pragma once

#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/endpoint.hpp"
#include "agent/faults.hpp"
#include "agent/listener.hpp"
#include "agent/server.hpp"

namespace certfleet::agent {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// epoll tags: a listening socket is `listen_tag | slot`, the wake-up eventfd `wake_tag`, a
/// connection its id (ids start at 1 and never reach the listen bit).
constexpr uint64_t listen_tag = uint64_t{1} << 63;
constexpr uint64_t wake_tag = 0;

/// One accepted connection, owned by its worker; destroyed by `worker::destroy`.
struct connection {
  uint64_t id = 0;
  int fd = -1;
  size_t slot = 0;
  std::string peer;
  std::unique_ptr<connection_logic> logic;
  std::unique_ptr<tls_server_session> tls;
  steady::time_point accepted;
  steady::time_point last_activity;
  steady::time_point closing_since;
  steady::time_point established_at;
  // When the first byte after the last complete message arrived; empty between messages.
  std::optional<steady::time_point> message_since;
  std::string source;         // the peer's address without its port
  bool unregistered = false;  // counted in worker::unregistered (not yet a registered manager's)
  uint64_t messages = 0;      // messages received whole
  bool stalled = false;
  bool established = false;
  bool closing = false;
  bool peer_gone = false;  // nothing more can be written: close at once
  bool want_write = false;
  bool refusal = false;  // log the reason as a warning
  std::string reason;
  std::vector<uint8_t> out;
  size_t out_pos = 0;
  std::unique_ptr<connection_faults> faults;  // null unless output faults were on at accept
  uint64_t identity_generation = 0;           // the endpoint's identity generation when accepted
};

/// One endpoint and its listening socket; belongs to worker `worker`.
struct slot {
  std::unique_ptr<endpoint> ep;
  listen_address addr;
  int listen_fd = -1;
  size_t worker = 0;
};

/// One event-loop thread: its epoll set, task queue and connections.
struct worker {
  agent_server::impl* srv = nullptr;
  size_t index = 0;
  int epfd = -1;
  int wakefd = -1;
  std::thread thread;
  std::mutex mu;
  std::vector<std::function<void()>> tasks;
  std::unordered_map<uint64_t, std::unique_ptr<connection>> conns;
  std::set<uint64_t> delayed;
  uint64_t next_id = 1;
  steady::time_point next_sweep;
  steady::time_point next_refresh;
  bool emfile_warned = false;
  std::vector<size_t> paused_listeners;
  // Connections not yet a registered manager's, in total and per source address.
  size_t unregistered = 0;
  std::unordered_map<std::string, size_t> unregistered_by_source;
  uint64_t evicted_since_warning = 0;
  steady::time_point next_eviction_warning;

  void run();
  void post(std::function<void()> fn);
  void run_tasks();
  void accept_on(size_t s);
  void readable(connection& c);
  void flush(connection& c);
  void finish_if_done(connection& c);
  void destroy(uint64_t id);
  void sweep(steady::time_point now);
  void release_delayed(steady::time_point now);
  void start_closing(connection& c, std::string reason, bool refusal);
  void set_write_interest(connection& c, bool on);
  void close_endpoint_connections(size_t s, const char* why);
  /// `c` is no longer unregistered (it registered, or it is being destroyed).
  void leave_unregistered(connection& c);
  /// Counts the new connection `c` as unregistered and, over a cap, closes the oldest other
  /// unregistered connection (from the same source when the per-source cap is the one exceeded).
  void admit_unregistered(connection& c);
  /// Drops `c` when its registration, or the message it is sending, is overdue.
  bool overdue(connection& c, steady::time_point now);
  /// Sends denied{code, why} when the session is established, then close_notify, and closes the
  /// connection once that is written. `c` may be destroyed before this returns.
  void refuse(connection& c, wire::denial_reason code, std::string why);
  /// The same without writing or destroying: `c` stays valid, the caller flushes it.
  void deny(connection& c, wire::denial_reason code, std::string why);
  /// Closes, with denied{certificate_changed}, every connection of slot `s` accepted under an
  /// earlier identity of its endpoint, as a restarted service would.
  void close_stale_sessions(size_t s);
  /// Lets each endpoint of this worker pick up changes made on disk (`before_connection`).
  void refresh_endpoints();
};

/// What `agent_server` shares with its workers. `slots` and `workers` are fixed after `start`.
struct agent_server::impl {
  server_options opts;
  std::vector<slot> slots;
  std::vector<std::unique_ptr<worker>> workers;
  std::atomic<bool> running{false};
  std::atomic<size_t> connections{0};
  mutable std::mutex snapshot_mu;  // guards addr ports and thumbs as read by other threads
  std::vector<thumbprint> thumbs;
  agent_server* self = nullptr;

  void close_all_fds() {
    for (auto& s : slots)
      if (s.listen_fd >= 0) {
        ::close(s.listen_fd);
        s.listen_fd = -1;
      }
    for (auto& w : workers) {
      for (auto& [id, c] : w->conns) ::close(c->fd);
      connections -= w->conns.size();
      w->conns.clear();
      if (w->epfd >= 0) ::close(w->epfd);
      if (w->wakefd >= 0) ::close(w->wakefd);
      w->epfd = w->wakefd = -1;
    }
  }

  caf::error listen_slot(size_t i) {
    auto& s = slots[i];
    listen_address a;
    {
      std::lock_guard<std::mutex> lock(snapshot_mu);
      a = s.addr;
    }
    auto fd = open_listener(a);
    if (!fd) return fd.error();
    {
      std::lock_guard<std::mutex> lock(snapshot_mu);
      s.addr = a;
    }
    s.listen_fd = *fd;
    if (workers.empty() || workers[s.worker]->epfd < 0) return {};
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = listen_tag | i;
    ::epoll_ctl(workers[s.worker]->epfd, EPOLL_CTL_ADD, s.listen_fd, &ev);
    return {};
  }

  // Runs `fn` on the thread owning slot `i` and waits for its result.
  template <class T>
  T on_owner(size_t i, std::function<T()> fn) {
    auto task = std::make_shared<std::packaged_task<T()>>(std::move(fn));
    auto fut = task->get_future();
    workers[slots[i].worker]->post([task] { (*task)(); });
    return fut.get();
  }

  caf::error apply(size_t i, const fault_command& cmd);
};

}  // namespace certfleet::agent
