#include "net/connector.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/address.hpp"
#include "common/fs.hpp"

namespace certfleet {
namespace {

using steady = std::chrono::steady_clock;

struct request {
  std::string host;
  uint16_t port;
  std::chrono::milliseconds deadline;
  connector::done_fn done;
};

struct pending {
  std::string address;
  steady::time_point deadline;
  connector::done_fn done;
};

std::string address_of(const std::string& host, uint16_t port) {
  return format_address(host, port);
}

}  // namespace

struct connector::impl {
  int epoll_fd = -1;
  int wake_fd = -1;
  std::mutex mtx;
  std::deque<request> queue;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> in_flight{0};
  std::unordered_map<int, pending> sockets;  // only touched by the connector thread
  std::multimap<steady::time_point, int> deadlines;
  std::thread thread;

  void run() {
    epoll_event events[256];
    while (!stopping) {
      int timeout_ms = 1000;
      if (!deadlines.empty()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadlines.begin()->first -
                                                                          steady::now());
        timeout_ms = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(left.count(), 1000)));
      }
      int n = ::epoll_wait(epoll_fd, events, 256, timeout_ms);
      for (int i = 0; i < n; ++i) {
        if (events[i].data.fd == wake_fd) {
          uint64_t v;
          [[maybe_unused]] auto r = ::read(wake_fd, &v, sizeof(v));
          drain_queue();
        } else {
          complete(events[i].data.fd);
        }
      }
      expire(steady::now());
    }
    for (auto& [fd, p] : sockets) {
      ::close(fd);
      p.done(-1, make_error(ec::timeout, "connect to " + p.address + " abandoned: shutting down"));
    }
    sockets.clear();
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& r : queue)
      r.done(-1, make_error(ec::timeout, "connect to " + address_of(r.host, r.port) +
                                             " abandoned: shutting down"));
    queue.clear();
  }

  void drain_queue() {
    std::deque<request> batch;
    {
      std::lock_guard<std::mutex> guard{mtx};
      batch.swap(queue);
    }
    for (auto& r : batch) start(std::move(r));
  }

  void fail(connector::done_fn& done, caf::error err) {
    --in_flight;
    done(-1, std::move(err));
  }

  void start(request r) {
    auto address = address_of(r.host, r.port);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    auto port = std::to_string(r.port);
    if (int rc = ::getaddrinfo(r.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
      fail(r.done, make_error(ec::timeout, "cannot resolve " + address + ": " + gai_strerror(rc)));
      return;
    }
    int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      int err = errno;
      ::freeaddrinfo(res);
      fail(r.done, make_error(ec::io_error,
                              "cannot create a socket for " + address + ": " + errno_text(err) +
                                  (err == EMFILE ? " (raise the open-file limit)" : "")));
      return;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
    int err = errno;
    ::freeaddrinfo(res);
    if (rc != 0 && err != EINPROGRESS) {
      ::close(fd);
      fail(r.done,
           make_error(ec::timeout, "cannot connect to " + address + ": " + errno_text(err)));
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    auto deadline = steady::now() + r.deadline;
    sockets.emplace(fd, pending{address, deadline, std::move(r.done)});
    deadlines.emplace(deadline, fd);
  }

  void complete(int fd) {
    auto it = sockets.find(fd);
    if (it == sockets.end()) return;
    auto p = std::move(it->second);
    sockets.erase(it);
    erase_deadline(fd, p.deadline);
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) {
      ::close(fd);
      fail(p.done,
           make_error(ec::timeout, "cannot connect to " + p.address + ": " + errno_text(so_error)));
      return;
    }
    --in_flight;
    p.done(fd, caf::error{});
  }

  void erase_deadline(int fd, steady::time_point t) {
    auto [first, last] = deadlines.equal_range(t);
    for (auto i = first; i != last; ++i)
      if (i->second == fd) {
        deadlines.erase(i);
        return;
      }
  }

  void expire(steady::time_point now) {
    while (!deadlines.empty() && deadlines.begin()->first <= now) {
      int fd = deadlines.begin()->second;
      deadlines.erase(deadlines.begin());
      auto it = sockets.find(fd);
      if (it == sockets.end()) continue;
      auto p = std::move(it->second);
      sockets.erase(it);
      ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
      ::close(fd);
      fail(p.done, make_error(ec::timeout, "connect to " + p.address + " timed out"));
    }
  }
};

connector::connector() : impl_(std::make_unique<impl>()) {
  impl_->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  impl_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = impl_->wake_fd;
  ::epoll_ctl(impl_->epoll_fd, EPOLL_CTL_ADD, impl_->wake_fd, &ev);
  impl_->thread = std::thread([p = impl_.get()] { p->run(); });
}

connector::~connector() {
  impl_->stopping = true;
  uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(impl_->wake_fd, &one, sizeof(one));
  impl_->thread.join();
  ::close(impl_->wake_fd);
  ::close(impl_->epoll_fd);
}

void connector::connect(std::string host, uint16_t port, std::chrono::milliseconds deadline,
                        done_fn done) {
  ++impl_->in_flight;
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    impl_->queue.push_back(request{std::move(host), port, deadline, std::move(done)});
  }
  uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(impl_->wake_fd, &one, sizeof(one));
}

size_t connector::in_flight() const {
  return impl_->in_flight;
}

uint64_t raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

}  // namespace certfleet
