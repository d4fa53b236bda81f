#include "agent/event_loop.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <deque>

#include <spdlog/spdlog.h>

#include "common/fs.hpp"

namespace certfleet::agent {

namespace {

constexpr auto sweep_interval = milliseconds{100};
// How long a closing connection may take to flush its last bytes (an alert, close_notify).
constexpr auto linger_limit = milliseconds{2000};
constexpr size_t read_chunk = 16 * 1024;
// How often endpoints look for changes made on disk by the CLI (a new certificate, accounts).
constexpr auto refresh_interval = milliseconds{1000};
// The most an unregistered client may have of one message buffered: far above any message it may
// send (hello, register_request: under 2 KiB), far below the frame limit for managers.
constexpr size_t unregistered_message_limit = 8 * 1024;
// Closing unregistered connections over a cap is logged at most this often, with a count.
constexpr auto eviction_warning_interval = milliseconds{10'000};

}  // namespace

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
    c->source = source_text(ss);
    c->accepted = c->last_activity = steady::now();
    if (ep.before_connection) {
      auto before = ep.identity_generation();
      ep.before_connection(ep);
      if (ep.identity_generation() != before) close_stale_sessions(si);
    }
    c->identity_generation = ep.identity_generation();
    const auto& f = ep.faults();
    epoll_event ev{};
    ev.data.u64 = c->id;
    if (f.stall) {
      // Not even reading: the client sees an open TCP connection that never answers.
      c->stalled = true;
      ev.events = EPOLLRDHUP;
    } else {
      c->faults = connection_faults::from(f);
      c->logic = std::make_unique<connection_logic>(ep, c->peer);
      connection* cp = c.get();
      worker* self = this;
      tls_outputs out;
      out.ciphertext = [self, cp](const uint8_t* data, size_t size) {
        if (cp->faults && cp->faults->slow.count() > 0) {
          cp->faults->delayed.emplace_back(steady::now() + cp->faults->slow,
                                           std::vector<uint8_t>(data, data + size));
          self->delayed.insert(cp->id);
        } else {
          cp->out.insert(cp->out.end(), data, data + size);
        }
      };
      out.message = [self, cp](wire::message&& m) {
        if (cp->closing) return;
        auto st = cp->logic->on_message(std::move(m));
        ++cp->messages;
        if (cp->unregistered && cp->logic->trusted()) self->leave_unregistered(*cp);
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
      out.activated = [cp] {
        cp->established = true;
        cp->established_at = steady::now();
      };
      out.closed = [self, cp](const caf::error& err) {
        if (err)
          self->start_closing(*cp, describe(err), true);
        else
          self->start_closing(*cp, "", false);
      };
      tls_options topts;
      topts.max_frame_size = srv->opts.max_frame_size;
      topts.min_version = topts.max_version = ep.protocol_version();
      c->tls = std::make_unique<tls_server_session>(
          ep.current_identity(), [cp](const thumbprint& t) { return cp->logic->check_pin(t); },
          ep.session_cache(), std::move(out), std::move(topts));
      c->logic->peer_certificate = [cp] { return cp->tls->peer_certificate_der(); };
      ev.events = EPOLLIN | EPOLLRDHUP;
    }
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      spdlog::error("endpoint {}: cannot watch a connection from {}: {}", ep.options().index,
                    c->peer, errno_text(errno));
      ::close(fd);
      continue;
    }
    ++srv->connections;
    auto& added = *c;
    conns.emplace(c->id, std::move(c));
    if (!added.stalled) admit_unregistered(added);
  }
}

void worker::leave_unregistered(connection& c) {
  if (!c.unregistered) return;
  c.unregistered = false;
  --unregistered;
  auto it = unregistered_by_source.find(c.source);
  if (it != unregistered_by_source.end() && --it->second == 0) unregistered_by_source.erase(it);
}

void worker::admit_unregistered(connection& c) {
  c.unregistered = true;
  ++unregistered;
  auto from_source = ++unregistered_by_source[c.source];
  const auto& o = srv->opts;
  bool per_source = from_source > o.max_unregistered_per_source;
  if (!per_source && unregistered <= o.max_unregistered) return;
  // The oldest other unregistered connection (from the same source, if that cap is exceeded):
  // a flood of new connections cannot starve the ones already accepted forever, and a client
  // that completes its handshake and registers promptly is never the oldest for long.
  connection* oldest = nullptr;
  for (auto& [id, other] : conns) {
    if (other.get() == &c || !other->unregistered || other->closing) continue;
    if (per_source && other->source != c.source) continue;
    if (!oldest || other->accepted < oldest->accepted) oldest = other.get();
  }
  if (!oldest) return;
  auto now = steady::now();
  ++evicted_since_warning;
  if (now >= next_eviction_warning) {
    spdlog::warn(
        "too many unregistered connections ({} in total, {} from {}; caps {} and {}): "
        "closed the oldest; {} closed so far for this reason",
        unregistered, from_source, c.source, o.max_unregistered, o.max_unregistered_per_source,
        evicted_since_warning);
    evicted_since_warning = 0;
    next_eviction_warning = now + eviction_warning_interval;
  }
  oldest->peer_gone = true;
  start_closing(*oldest, "", false);
  destroy(oldest->id);
}

bool worker::overdue(connection& c, steady::time_point now) {
  const auto& o = srv->opts;
  if (c.unregistered && now - c.established_at > o.registration_timeout) {
    deny(c, wire::denial_reason::not_registered,
         "did not register within " + std::to_string(o.registration_timeout.count()) +
             " ms of the TLS handshake");
    return true;
  }
  if (c.message_since && now - *c.message_since > o.message_timeout) {
    deny(c, wire::denial_reason::protocol_violation,
         "a message did not arrive whole within " + std::to_string(o.message_timeout.count()) +
             " ms of its first byte");
    return true;
  }
  return false;
}

void worker::readable(connection& c) {
  uint8_t buf[read_chunk];
  for (int round = 0; round < 4 && !c.closing; ++round) {
    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n > 0) {
      c.last_activity = steady::now();
      if (c.established && !c.message_since) c.message_since = c.last_activity;
      auto completed = c.messages;
      if (auto err = c.tls->received(buf, static_cast<size_t>(n))) {
        start_closing(c, describe(err), true);
        continue;
      }
      if (c.messages != completed && c.tls->buffered_frame_bytes() == 0) {
        // A message completed and no other is partly buffered: the clock starts again with the
        // next byte. Bytes of a TLS record not yet complete are invisible here, so the clock only
        // ever stops at a completed message: trickling a record cannot reset it.
        c.message_since.reset();
      } else if (c.unregistered && c.tls->buffered_frame_bytes() > unregistered_message_limit) {
        deny(c, wire::denial_reason::protocol_violation,
             "an unregistered client sent a message larger than " +
                 std::to_string(unregistered_message_limit) + " bytes");
        return;
      }
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
    if (c.faults) want = c.faults->writable(want);
    ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, want, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_pos += static_cast<size_t>(n);
      if (c.faults && c.faults->wrote(static_cast<size_t>(n))) {
        c.peer_gone = true;
        c.closing = false;
        start_closing(c,
                      "fault drop-after: closed after " + std::to_string(c.faults->written) +
                          " bytes written",
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
  bool nothing_delayed = !c.faults || c.faults->delayed.empty();
  if (c.peer_gone || (c.out_pos >= c.out.size() && nothing_delayed)) destroy(c.id);
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
  leave_unregistered(c);
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
    auto& queue = c.faults->delayed;  // only connections with output faults are in `delayed`
    while (!queue.empty() && queue.front().first <= now) {
      auto& bytes = queue.front().second;
      c.out.insert(c.out.end(), bytes.begin(), bytes.end());
      queue.pop_front();
    }
    bool empty = queue.empty();
    auto id = *it;
    it = empty ? delayed.erase(it) : std::next(it);
    flush(c);
    if (conns.count(id)) finish_if_done(c);
  }
}

void worker::deny(connection& c, wire::denial_reason code, std::string why) {
  if (c.closing) return;
  if (c.tls && c.tls->is_active()) {
    if (auto err = c.tls->send(wire::denied{code, why}))
      why += " (the denial could not be sent: " + describe(err) + ")";
  }
  if (c.tls) c.tls->close();
  start_closing(c, std::move(why), false);
}

void worker::refuse(connection& c, wire::denial_reason code, std::string why) {
  if (c.closing) return;
  deny(c, code, std::move(why));
  flush(c);
  finish_if_done(c);
}

void worker::close_stale_sessions(size_t s) {
  const auto& ep = *srv->slots[s].ep;
  auto now_presenting = ep.current_identity().sha256();
  {
    std::lock_guard<std::mutex> lock(srv->snapshot_mu);
    srv->thumbs[s] = now_presenting;
  }
  std::vector<uint64_t> ids;
  for (auto& [id, c] : conns)
    if (c->slot == s && !c->closing && c->identity_generation != ep.identity_generation())
      ids.push_back(id);
  for (auto id : ids) {
    auto it = conns.find(id);
    if (it == conns.end()) continue;
    refuse(*it->second, wire::denial_reason::certificate_changed,
           "this backup server's certificate changed to " + now_presenting.to_string() +
               "; connect again and verify the new thumbprint");
  }
}

void worker::refresh_endpoints() {
  for (size_t s = 0; s < srv->slots.size(); ++s) {
    auto& sl = srv->slots[s];
    if (sl.worker != index || !sl.ep->before_connection) continue;
    auto before = sl.ep->identity_generation();
    sl.ep->before_connection(*sl.ep);
    if (sl.ep->identity_generation() != before) close_stale_sessions(s);
  }
}

void worker::sweep(steady::time_point now) {
  if (now >= next_refresh) {
    next_refresh = now + refresh_interval;
    refresh_endpoints();
  }
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
    } else if (c.established && overdue(c, now)) {
      flush(c);
      if (c.out_pos >= c.out.size()) expired.push_back(id);
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
      if (it != conns.end() && it->second->faults && !it->second->faults->delayed.empty())
        wake = std::min(wake, it->second->faults->delayed.front().first);
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

}  // namespace certfleet::agent
