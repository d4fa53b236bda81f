#include "control/control_client.hpp"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/fs.hpp"

namespace certfleet::control {
namespace {

caf::error lost(const std::string& path) {
  return make_error(
      ec::protocol_error,
      "certfleetd at " + path + " closed the connection before replying; see the daemon's log");
}

}  // namespace

caf::expected<control_client> control_client::connect(const std::string& path,
                                                      connect_failure* why) {
  auto classify = [&](connect_failure f) {
    if (why) *why = f;
  };
  classify(connect_failure::none);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    classify(connect_failure::other);
    return make_error(ec::invalid_argument, "control socket path \"" + path + "\" must be 1 to " +
                                                std::to_string(sizeof(addr.sun_path) - 1) +
                                                " bytes long");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    classify(connect_failure::other);
    return make_error(ec::io_error, "cannot create a Unix socket: " + errno_text(errno));
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    if (err == ENOENT || err == ECONNREFUSED) {
      classify(connect_failure::not_running);
      return make_error(
          ec::io_error,
          "cannot reach certfleetd at " + path + ": " +
              (err == ENOENT ? "connection refused (no socket file)" : "connection refused") +
              "; is it running? start it with 'certfleetd --config FILE'");
    }
    if (err == EACCES || err == EPERM) {
      classify(connect_failure::permission_denied);
      return make_error(ec::permission_denied,
                        "cannot reach certfleetd at " + path +
                            ": permission denied; run certfleet as the daemon's user or root, or "
                            "as a member of daemon.read_only_group for read-only commands");
    }
    classify(connect_failure::other);
    return make_error(ec::io_error, "cannot reach certfleetd at " + path + ": " + errno_text(err));
  }
  return control_client{fd, path};
}

control_client::control_client(control_client&& other) noexcept
    : fd_(other.fd_),
      path_(std::move(other.path_)),
      buffer_(std::move(other.buffer_)),
      next_id_(other.next_id_) {
  other.fd_ = -1;
}

control_client& control_client::operator=(control_client&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
    path_ = std::move(other.path_);
    buffer_ = std::move(other.buffer_);
    next_id_ = other.next_id_;
  }
  return *this;
}

control_client::~control_client() {
  if (fd_ >= 0) ::close(fd_);
}

caf::error control_client::send_raw(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    auto n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(ec::protocol_error,
                        "cannot send to certfleetd at " + path_ + ": " + errno_text(errno));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

caf::expected<std::string> control_client::read_line() {
  for (;;) {
    auto pos = buffer_.find('\n');
    if (pos != std::string::npos) {
      std::string line = buffer_.substr(0, pos);
      buffer_.erase(0, pos + 1);
      return line;
    }
    char chunk[65536];
    auto n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return make_error(ec::protocol_error,
                        "cannot read from certfleetd at " + path_ + ": " + errno_text(errno));
    if (n == 0) return lost(path_);
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

caf::expected<nlohmann::json> control_client::read_json() {
  auto line = read_line();
  if (!line) return line.error();
  auto doc = nlohmann::json::parse(*line, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return make_error(ec::protocol_error, "certfleetd at " + path_ +
                                              " sent a line that is not a JSON object; is "
                                              "the socket really certfleetd's?");
  return doc;
}

caf::expected<nlohmann::json> control_client::call(const std::string& op,
                                                   const nlohmann::json& args) {
  uint64_t id = next_id_++;
  nlohmann::json msg{{"id", id}, {"op", op}, {"args", args}};
  std::string line = msg.dump() + "\n";
  scrub_passwords(msg);
  auto err = send_raw(line);
  scrub(line);
  if (err) return err;
  for (;;) {
    auto reply = read_json();
    if (!reply) return reply.error();
    auto rid = reply->find("id");
    // A reply without our id is a connection-level refusal (for example the peer check).
    bool ours = rid != reply->end() && (rid->is_null() || *rid == id);
    if (!ours) continue;
    if (reply->value("ok", false)) return reply->value("result", nlohmann::json{});
    return error_from_json(reply->value("error", nlohmann::json{}));
  }
}

caf::expected<control_client::stream_end> control_client::subscribe(
    const nlohmann::json& args, const std::function<bool(const nlohmann::json&)>& on_event) {
  uint64_t id = next_id_++;
  auto line = nlohmann::json{{"id", id}, {"op", "events.subscribe"}, {"args", args}}.dump() + "\n";
  if (auto err = send_raw(line)) return err;
  stream_end end;
  for (;;) {
    auto msg = read_json();
    if (!msg) return msg.error();
    if (auto ev = msg->find("event"); ev != msg->end()) {
      if (ev->is_object()) end.last_seq = ev->value("seq", end.last_seq);
      if (!on_event(*ev)) return end;
      continue;
    }
    if (auto cut = msg->find("cutoff"); cut != msg->end()) {
      end.cut_off = true;
      end.last_seq = cut->value("last_seq", end.last_seq);
      end.reason = cut->value("reason", std::string{});
      return end;
    }
    if (msg->contains("ok")) {
      if (!msg->value("ok", false)) return error_from_json(msg->value("error", nlohmann::json{}));
      auto result = msg->value("result", nlohmann::json::object());
      if (result.is_object()) end.last_seq = result.value("last_seq", end.last_seq);
      return end;
    }
  }
}

}  // namespace certfleet::control
