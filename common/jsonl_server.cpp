#include "common/jsonl_server.hpp"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <list>
#include <mutex>
#include <thread>

#include "common/fs.hpp"

namespace certfleet::jsonl {

bool connection::write(const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    auto n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool connection::reply(const nlohmann::json& id, const caf::expected<nlohmann::json>& result) {
  return write(result ? ok_reply(id, *result) : error_reply(id, result.error()));
}

std::optional<peer_identity> identify_peer(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return std::nullopt;
  peer_identity peer;
  peer.pid = cred.pid;
  peer.uid = cred.uid;
  peer.gid = cred.gid;
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 4; ++attempt) {
    socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
      groups.resize(glen / sizeof(gid_t));
      peer.groups = std::move(groups);
      break;
    }
    if (errno != ERANGE) break;  // an old kernel: the primary group alone decides
    groups.resize(glen / sizeof(gid_t) + 1);
  }
  return peer;
}

namespace {

struct client {
  int fd = -1;
  std::thread thread;
  std::atomic<bool> done{false};
};

class server_impl final : public server {
 public:
  server_impl(server_options opts, accept_fn on_accept, int listen_fd, int stop_fd)
      : opts_(std::move(opts)),
        on_accept_(std::move(on_accept)),
        listen_fd_(listen_fd),
        stop_fd_(stop_fd) {
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~server_impl() override { stop(); }

  void stop() override {
    std::lock_guard<std::mutex> stop_lock(stop_mutex_);
    if (stopped_) return;
    stopping_ = true;
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof(one));
    if (acceptor_.joinable()) acceptor_.join();
    std::list<std::unique_ptr<client>> clients;
    {
      std::lock_guard<std::mutex> lock(clients_mutex_);
      // Shutting a socket down wakes its thread from recv, send or poll; the thread then exits.
      for (auto& c : clients_) ::shutdown(c->fd, SHUT_RDWR);
      clients.swap(clients_);
    }
    for (auto& c : clients) {
      if (c->thread.joinable()) c->thread.join();
      ::close(c->fd);
    }
    ::close(listen_fd_);
    ::close(stop_fd_);
    ::unlink(opts_.socket_path.c_str());
    stopped_ = true;
  }

  const std::string& socket_path() const override { return opts_.socket_path; }

 private:
  void accept_loop() {
    for (;;) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents || stopping_) return;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;  // a peer that gave up before accept, or fd exhaustion: keep serving
      reap_finished();
      std::lock_guard<std::mutex> lock(clients_mutex_);
      if (clients_.size() >= opts_.max_clients) {
        connection c{fd, stopping_};
        c.write(error_reply(
            nullptr, make_error(ec::invalid_state,
                                opts_.service + " is serving " + std::to_string(clients_.size()) +
                                    " connections on its control socket already; "
                                    "try again when one has closed")));
        ::close(fd);
        continue;
      }
      auto c = std::make_unique<client>();
      c->fd = fd;
      auto* raw = c.get();
      c->thread = std::thread([this, raw] {
        serve(raw->fd);
        // The peer sees EOF now; the descriptor itself is closed when the thread is reaped.
        ::shutdown(raw->fd, SHUT_RDWR);
        raw->done = true;
      });
      clients_.push_back(std::move(c));
    }
  }

  void reap_finished() {
    std::list<std::unique_ptr<client>> finished;
    {
      std::lock_guard<std::mutex> lock(clients_mutex_);
      for (auto it = clients_.begin(); it != clients_.end();) {
        if ((*it)->done) {
          finished.push_back(std::move(*it));
          it = clients_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& c : finished) {
      c->thread.join();
      ::close(c->fd);
    }
  }

  void serve(int fd) {
    connection conn{fd, stopping_};
    auto peer = identify_peer(fd);
    if (!peer) {
      conn.write(error_reply(nullptr, make_error(ec::permission_denied,
                                                 "the kernel cannot identify this peer; "
                                                 "connections from other namespaces are refused")));
      return;
    }
    auto handler = on_accept_(*peer);
    if (!handler) {
      conn.write(error_reply(nullptr, handler.error()));
      return;
    }
    line_reader reader{opts_.max_line};
    std::string line;
    char chunk[16384];
    while (!stopping_) {
      if (opts_.idle_timeout.count() > 0) {
        pollfd pfd{fd, POLLIN, 0};
        int r = ::poll(&pfd, 1, static_cast<int>(opts_.idle_timeout.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return;
      }
      auto n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      reader.feed(chunk, static_cast<size_t>(n));
      ::explicit_bzero(chunk, static_cast<size_t>(n));
      while (reader.next(line)) {
        nlohmann::json request, id;
        auto err = parse_line(line, request, id);
        scrub(line);
        bool more = err ? conn.write(error_reply(id, err)) : (*handler)(conn, id, request);
        scrub_passwords(request);
        if (!more) return;
      }
      if (reader.overflowed()) {
        conn.write(error_reply(
            nullptr, make_error(ec::frame_too_large, "request line longer than " +
                                                         std::to_string(opts_.max_line) +
                                                         " bytes; the connection is closed. Split "
                                                         "bulk requests into smaller ones")));
        return;
      }
    }
  }

  server_options opts_;
  accept_fn on_accept_;
  int listen_fd_;
  int stop_fd_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mutex_;
  bool stopped_ = false;
  std::thread acceptor_;
  std::mutex clients_mutex_;
  std::list<std::unique_ptr<client>> clients_;
};

/// Removes a socket file nobody answers on; refuses when a process answers or it is not a socket.
caf::error clear_stale_socket(const server_options& opts, const sockaddr_un& addr) {
  const auto& path = opts.socket_path;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return {};
  if (!S_ISSOCK(st.st_mode))
    return make_error(ec::already_exists,
                      path + " exists and is not a socket; remove it or choose another path");
  int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0)
    return make_error(ec::io_error, "cannot create a Unix socket: " + errno_text(errno));
  int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  ::close(probe);
  if (rc == 0)
    return make_error(ec::already_exists, "another " + opts.service + " is already serving on " +
                                              path + "; " + opts.already_running_hint);
  if (err != ECONNREFUSED)
    return make_error(ec::io_error,
                      "cannot probe the existing socket " + path + ": " + errno_text(err));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return make_error(ec::io_error,
                      "cannot remove the stale socket " + path + ": " + errno_text(errno));
  return {};
}

}  // namespace

caf::expected<std::unique_ptr<server>> server::start(server_options opts, accept_fn on_accept) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (opts.socket_path.empty() || opts.socket_path.size() >= sizeof(addr.sun_path))
    return make_error(ec::bad_config, "socket path \"" + opts.socket_path + "\" must be 1 to " +
                                          std::to_string(sizeof(addr.sun_path) - 1) +
                                          " bytes long; choose a shorter path");
  std::memcpy(addr.sun_path, opts.socket_path.data(), opts.socket_path.size());
  if (auto err = clear_stale_socket(opts, addr)) return err;

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(ec::io_error, "cannot create a Unix socket: " + errno_text(errno));
  auto fail = [&](const std::string& what, bool unlink) {
    auto err = make_error(ec::io_error, what + " " + opts.socket_path + ": " + errno_text(errno));
    ::close(fd);
    if (unlink) ::unlink(opts.socket_path.c_str());
    return err;
  };
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return fail("cannot bind the socket", false);
  // Permissions before listen: no connection can arrive while the socket is still open to others.
  if (::chmod(opts.socket_path.c_str(), opts.socket_mode) != 0 ||
      (opts.socket_group &&
       ::chown(opts.socket_path.c_str(), static_cast<uid_t>(-1), *opts.socket_group) != 0))
    return fail("cannot restrict the permissions of", true);
  if (::listen(fd, 128) != 0) return fail("cannot listen on", true);
  int stop_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop_fd < 0) return fail("cannot create an eventfd for", true);
  return std::unique_ptr<server>(
      new server_impl(std::move(opts), std::move(on_accept), fd, stop_fd));
}

}  // namespace certfleet::jsonl
