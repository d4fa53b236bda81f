#include "agent/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "common/fs.hpp"

namespace certfleet::agent {

namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint64_t listen_tag = uint64_t{1} << 63;
constexpr uint64_t wake_tag = 0;
constexpr auto sweep_interval = milliseconds{100};
// How long a closing connection may take to flush its last bytes (an alert, close_notify).
constexpr auto linger_limit = milliseconds{2000};
constexpr size_t read_chunk = 16 * 1024;

struct fault_name {
  fault_kind kind;
  const char* name;
};
constexpr fault_name fault_names[] = {
    {fault_kind::offline, "offline"},
    {fault_kind::online, "online"},
    {fault_kind::regenerate, "regenerate"},
    {fault_kind::stall, "stall"},
    {fault_kind::slow_handshake, "slow-handshake"},
    {fault_kind::drop_after, "drop-after"},
    {fault_kind::deny_registrations, "deny-registrations"},
    {fault_kind::accept_registrations, "accept-registrations"},
    {fault_kind::clear, "clear"},
};

std::string endpoint_text(const listen_address& a) {
  return (a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host) + ":" +
         std::to_string(a.port);
}

std::string peer_text(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {};
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
  port = ntohs(in6->sin6_port);
  return "[" + std::string(host) + "]:" + std::to_string(port);
}

// Creates a nonblocking listening socket on `a`, filling in the bound port.
caf::expected<int> open_listener(listen_address& a) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  auto* in = reinterpret_cast<sockaddr_in*>(&ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, a.host.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(a.port);
    len = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, a.host.c_str(), &in6->sin6_addr) == 1) {
    family = AF_INET6;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(a.port);
    len = sizeof(sockaddr_in6);
  } else {
    return make_error(ec::invalid_argument, "'" + a.host +
                                                "' is not an IPv4 or IPv6 address; give a "
                                                "literal such as 127.0.0.1");
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return make_error(ec::io_error,
                      "cannot create a socket for " + endpoint_text(a) + ": " + errno_text(errno) +
                          (errno == EMFILE ? "; raise the file-descriptor limit" : ""));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 512) != 0) {
    int err = errno;
    ::close(fd);
    return make_error(ec::io_error, "cannot listen on " + endpoint_text(a) + ": " +
                                        errno_text(err) +
                                        "; choose another address or port, or stop whatever "
                                        "uses it");
  }
  if (a.port == 0) {
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
    a.port = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                              : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  }
  return fd;
}

}  // namespace

const char* to_string(fault_kind k) {
  for (const auto& f : fault_names)
    if (f.kind == k) return f.name;
  return "unknown";
}

caf::expected<fault_kind> parse_fault_kind(const std::string& text) {
  for (const auto& f : fault_names)
    if (text == f.name) return f.kind;
  std::string all;
  for (const auto& f : fault_names) all += std::string(all.empty() ? "" : ", ") + f.name;
  return make_error(ec::invalid_argument, "unknown fault '" + text + "'; use one of: " + all);
}

bool takes_value(fault_kind k) {
  return k == fault_kind::slow_handshake || k == fault_kind::drop_after;
}

// --- connections and threads ---------------------------------------------------------------------

namespace {

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
  bool stalled = false;
  bool established = false;
  bool closing = false;
  bool peer_gone = false;  // nothing more can be written: close at once
  bool want_write = false;
  bool refusal = false;  // log the reason as a warning
  std::string reason;
  std::vector<uint8_t> out;
  size_t out_pos = 0;
  std::deque<std::pair<steady::time_point, std::vector<uint8_t>>> delayed;
  milliseconds slow{0};
  uint64_t drop_after = 0;
  uint64_t written = 0;
};

}  // namespace

struct slot {
  std::unique_ptr<endpoint> ep;
  listen_address addr;
  int listen_fd = -1;
  size_t worker = 0;
};

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
  bool emfile_warned = false;
  std::vector<size_t> paused_listeners;

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
};

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

void worker::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu);
    tasks.push_back(std::move(fn));
  }
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wakefd, &one, sizeof one);
}

void worker::run_tasks() {
  uint64_t count = 0;
  [[maybe_unused]] auto n = ::read(wakefd, &count, sizeof count);
  std::vector<std::function<void()>> todo;
  {
    std::lock_guard<std::mutex> lock(mu);
    todo.swap(tasks);
  }
  for (auto& t : todo) t();
}

void worker::set_write_interest(connection& c, bool on) {
  if (c.want_write == on) return;
  c.want_write = on;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (on ? uint32_t{EPOLLOUT} : 0u);
  ev.data.u64 = c.id;
  ::epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev);
}

void worker::start_closing(connection& c, std::string reason, bool refusal) {
  if (c.closing) return;
  c.closing = true;
  c.closing_since = steady::now();
  c.reason = std::move(reason);
  c.refusal = refusal;
}

void worker::accept_on(size_t si) {
  auto& s = srv->slots[si];
  auto& ep = *s.ep;
  for (int i = 0; i < 64 && s.listen_fd >= 0; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(s.listen_fd, reinterpret_cast<sockaddr*>(&ss), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        if (!emfile_warned)
          spdlog::error(
              "out of file descriptors: new connections wait in the listen queues; "
              "raise the limit or split the fleet over several processes");
        emfile_warned = true;
        // The listening socket stays readable: stop watching it until the next sweep, or the
        // loop would spin on it.
        ::epoll_ctl(epfd, EPOLL_CTL_DEL, s.listen_fd, nullptr);
        paused_listeners.push_back(si);
      }
      return;
    }
    emfile_warned = false;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<connection>();
    c->id = next_id++;
    c->fd = fd;
    c->slot = si;
    c->peer = peer_text(ss);
    c->accepted = c->last_activity = steady::now();
    if (ep.before_connection) ep.before_connection(ep);
    const auto& f = ep.faults();
    epoll_event ev{};
    ev.data.u64 = c->id;
    if (f.stall) {
      // Not even reading: the client sees an open TCP connection that never answers.
      c->stalled = true;
      ev.events = EPOLLRDHUP;
    } else {
      c->slow = f.slow;
      c->drop_after = f.drop_after_bytes;
      c->logic = std::make_unique<connection_logic>(ep, c->peer);
      connection* cp = c.get();
      worker* self = this;
      tls_outputs out;
      out.ciphertext = [self, cp](const uint8_t* data, size_t size) {
        if (cp->slow.count() > 0) {
          cp->delayed.emplace_back(steady::now() + cp->slow,
                                   std::vector<uint8_t>(data, data + size));
          self->delayed.insert(cp->id);
        } else {
          cp->out.insert(cp->out.end(), data, data + size);
        }
      };
      out.message = [self, cp](wire::message&& m) {
        if (cp->closing) return;
        auto st = cp->logic->on_message(std::move(m));
        for (const auto& reply : st.replies) {
          if (auto err = cp->tls->send(reply)) {
            st.close = true;
            st.reason = "cannot answer: " + describe(err);
            break;
          }
        }
        if (st.close) {
          cp->tls->close();
          self->start_closing(*cp, st.reason, true);
        }
      };
      out.activated = [cp] { cp->established = true; };
      out.closed = [self, cp](const caf::error& err) {
        if (err)
          self->start_closing(*cp, describe(err), true);
        else
          self->start_closing(*cp, "", false);
      };
      tls_options topts;
      topts.max_frame_size = srv->opts.max_frame_size;
      c->tls = std::make_unique<tls_server_session>(
          ep.current_identity(), [cp](const thumbprint& t) { return cp->logic->check_pin(t); },
          ep.session_cache(), std::move(out), std::move(topts));
      ev.events = EPOLLIN | EPOLLRDHUP;
    }
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      spdlog::error("endpoint {}: cannot watch a connection from {}: {}", ep.options().index,
                    c->peer, errno_text(errno));
      ::close(fd);
      continue;
    }
    ++srv->connections;
    conns.emplace(c->id, std::move(c));
  }
}

void worker::readable(connection& c) {
  uint8_t buf[read_chunk];
  for (int round = 0; round < 4 && !c.closing; ++round) {
    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n > 0) {
      c.last_activity = steady::now();
      if (auto err = c.tls->received(buf, static_cast<size_t>(n)))
        start_closing(c, describe(err), true);
      continue;
    }
    if (n == 0) {
      c.peer_gone = true;
      if (c.established)
        start_closing(c, "", false);
      else
        start_closing(c, "the client closed the connection during the TLS handshake", true);
      return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if (errno == EINTR) continue;
    c.peer_gone = true;
    start_closing(c, "connection error: " + errno_text(errno), c.established ? false : true);
    return;
  }
}

void worker::flush(connection& c) {
  while (!c.peer_gone && c.out_pos < c.out.size()) {
    size_t want = c.out.size() - c.out_pos;
    if (c.drop_after > 0) want = std::min<uint64_t>(want, c.drop_after - c.written);
    ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, want, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_pos += static_cast<size_t>(n);
      c.written += static_cast<uint64_t>(n);
      if (c.drop_after > 0 && c.written >= c.drop_after) {
        c.peer_gone = true;
        c.closing = false;
        start_closing(
            c, "fault drop-after: closed after " + std::to_string(c.written) + " bytes written",
            false);
        return;
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_write_interest(c, true);
      return;
    }
    if (n < 0 && errno == EINTR) continue;
    c.peer_gone = true;
    start_closing(c, "cannot write: " + errno_text(errno), false);
    return;
  }
  c.out.clear();
  c.out_pos = 0;
  set_write_interest(c, false);
}

void worker::finish_if_done(connection& c) {
  if (!c.closing) return;
  if (c.peer_gone || (c.out_pos >= c.out.size() && c.delayed.empty())) destroy(c.id);
}

void worker::destroy(uint64_t id) {
  auto it = conns.find(id);
  if (it == conns.end()) return;
  auto& c = *it->second;
  auto index = srv->slots[c.slot].ep->options().index;
  if (!c.reason.empty()) {
    if (c.refusal)
      spdlog::warn("endpoint {}: connection from {} closed: {}", index, c.peer, c.reason);
    else
      spdlog::info("endpoint {}: connection from {} closed: {}", index, c.peer, c.reason);
  }
  ::close(c.fd);
  delayed.erase(id);
  conns.erase(it);
  --srv->connections;
}

void worker::close_endpoint_connections(size_t s, const char* why) {
  std::vector<uint64_t> ids;
  for (auto& [id, c] : conns)
    if (c->slot == s) ids.push_back(id);
  for (auto id : ids) {
    auto& c = *conns[id];
    c.peer_gone = true;
    start_closing(c, why, false);
    destroy(id);
  }
}

void worker::release_delayed(steady::time_point now) {
  for (auto it = delayed.begin(); it != delayed.end();) {
    auto cit = conns.find(*it);
    if (cit == conns.end()) {
      it = delayed.erase(it);
      continue;
    }
    auto& c = *cit->second;
    while (!c.delayed.empty() && c.delayed.front().first <= now) {
      auto& bytes = c.delayed.front().second;
      c.out.insert(c.out.end(), bytes.begin(), bytes.end());
      c.delayed.pop_front();
    }
    bool empty = c.delayed.empty();
    auto id = *it;
    it = empty ? delayed.erase(it) : std::next(it);
    flush(c);
    if (conns.count(id)) finish_if_done(c);
  }
}

void worker::sweep(steady::time_point now) {
  const auto& o = srv->opts;
  std::vector<uint64_t> expired;
  for (auto& [id, cp] : conns) {
    auto& c = *cp;
    if (c.closing) {
      if (now - c.closing_since > linger_limit) expired.push_back(id);
      continue;
    }
    if (c.stalled) {
      if (now - c.accepted > o.idle_timeout) {
        start_closing(c, "stalled connection reached the idle timeout", false);
        expired.push_back(id);
      }
    } else if (!c.established && now - c.accepted > o.handshake_timeout) {
      start_closing(c,
                    "no completed TLS handshake within " +
                        std::to_string(o.handshake_timeout.count()) + " ms of connecting",
                    true);
      expired.push_back(id);
    } else if (c.established && now - c.last_activity > o.idle_timeout) {
      c.tls->close();
      start_closing(c, "idle for " + std::to_string(o.idle_timeout.count()) + " ms", false);
      flush(c);
      if (c.out_pos >= c.out.size()) expired.push_back(id);
    }
  }
  for (auto id : expired) {
    auto it = conns.find(id);
    if (it != conns.end()) it->second->peer_gone = true;
    destroy(id);
  }
  for (auto si : paused_listeners) {
    int fd = srv->slots[si].listen_fd;
    if (fd < 0) continue;  // went offline meanwhile
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = listen_tag | si;
    ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);  // EEXIST after an offline/online cycle: harmless
  }
  paused_listeners.clear();
}

void worker::run() {
  std::vector<epoll_event> events(256);
  next_sweep = steady::now() + sweep_interval;
  while (srv->running.load(std::memory_order_relaxed)) {
    auto now = steady::now();
    auto wake = next_sweep;
    for (auto id : delayed) {
      auto it = conns.find(id);
      if (it != conns.end() && !it->second->delayed.empty())
        wake = std::min(wake, it->second->delayed.front().first);
    }
    int timeout = static_cast<int>(
        std::max<int64_t>(0, std::chrono::duration_cast<milliseconds>(wake - now).count() + 1));
    int n = ::epoll_wait(epfd, events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) {
      spdlog::error("event loop {}: epoll_wait failed: {}", index, errno_text(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag == wake_tag) {
        run_tasks();
        continue;
      }
      if (tag & listen_tag) {
        accept_on(static_cast<size_t>(tag & ~listen_tag));
        continue;
      }
      auto it = conns.find(tag);
      if (it == conns.end()) continue;  // closed earlier in this batch
      auto& c = *it->second;
      uint32_t ev = events[i].events;
      if (c.stalled) {
        c.peer_gone = true;
        start_closing(c, "", false);
        destroy(c.id);
        continue;
      }
      if (ev & EPOLLIN) readable(c);
      if ((ev & (EPOLLHUP | EPOLLERR)) && !(ev & EPOLLIN)) {
        c.peer_gone = true;
        start_closing(c, c.established ? "" : "the client went away during the TLS handshake",
                      !c.established);
      }
      flush(c);
      finish_if_done(c);
    }
    now = steady::now();
    if (!delayed.empty()) release_delayed(now);
    if (now >= next_sweep) {
      sweep(now);
      next_sweep = now + sweep_interval;
    }
  }
}

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
      {
        std::lock_guard<std::mutex> lock(snapshot_mu);
        thumbs[i] = id->sha256();
      }
      spdlog::info("endpoint {}: new certificate {}", ep.options().index, id->sha256().to_string());
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
      auto& c = *w.conns[id];
      c.tls->close();
      w.start_closing(c, "the manager " + t.to_string() + " was revoked", false);
      w.flush(c);
      w.finish_if_done(c);
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
