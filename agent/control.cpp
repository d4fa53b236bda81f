#include "agent/control.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "common/fs.hpp"

namespace certfleet::agent {

namespace {

constexpr auto read_deadline = std::chrono::milliseconds{5000};

bool make_address(const std::filesystem::path& p, sockaddr_un& addr) {
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  auto s = p.string();
  if (s.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, s.c_str(), s.size() + 1);
  return true;
}

caf::error path_too_long(const std::filesystem::path& p) {
  return make_error(ec::invalid_argument, "the control socket path " + p.string() +
                                              " is too long for a Unix socket; use a shorter "
                                              "state directory");
}

// Connects to `p`; -1 with errno set when nobody listens.
int connect_unix(const std::filesystem::path& p) {
  sockaddr_un addr{};
  if (!make_address(p, addr)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// Reads one line (without the newline) before `deadline`; false on EOF, error or timeout.
bool read_line(int fd, std::string& buffer, std::string& line,
               std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto nl = buffer.find('\n');
    if (nl != std::string::npos) {
      line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      return true;
    }
    if (buffer.size() > jsonl::default_max_line) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer.append(buf, static_cast<size_t>(n));
  }
}

bool write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

control_server::~control_server() {
  if (server_) server_->stop();
}

caf::expected<std::unique_ptr<control_server>> control_server::start(
    const std::filesystem::path& socket_path, handler h) {
  sockaddr_un addr{};
  if (!make_address(socket_path, addr)) return path_too_long(socket_path);
  jsonl::server_options opts;
  opts.socket_path = socket_path.string();
  opts.socket_mode = 0600;
  opts.max_clients = 8;
  opts.idle_timeout = read_deadline;
  opts.service = "agent";
  opts.already_running_hint = "stop it or use another state directory";
  auto on_accept =
      [h = std::move(h)](const jsonl::peer_identity& peer) -> caf::expected<jsonl::request_fn> {
    if (peer.uid != ::getuid()) {
      spdlog::warn("control socket: refused a client running as uid {}", peer.uid);
      return make_error(ec::permission_denied,
                        "uid " + std::to_string(peer.uid) +
                            " may not use this agent's control socket; run the command as uid " +
                            std::to_string(::getuid()));
    }
    return jsonl::request_fn{[h](jsonl::connection& c, const nlohmann::json& id,
                                 nlohmann::json& request) { return c.reply(id, h(request)); }};
  };
  auto srv = jsonl::server::start(std::move(opts), std::move(on_accept));
  if (!srv) return srv.error();
  return std::unique_ptr<control_server>(new control_server(std::move(*srv)));
}

caf::expected<nlohmann::json> handle_control_request(agent_server& server,
                                                     const nlohmann::json& req) {
  auto bad = [](const std::string& why) { return make_error(ec::invalid_argument, why); };
  if (!req.contains("endpoint")) return bad("the request names no endpoint");
  const auto& ep = req["endpoint"];
  bool all = ep.is_string() && ep.get<std::string>() == "all";
  size_t index = 0;
  if (!all) {
    if (!ep.is_number_unsigned()) return bad("'endpoint' must be an index or \"all\"");
    index = ep.get<size_t>();
    if (index >= server.size())
      return bad("there is no endpoint " + std::to_string(index) + "; this process has " +
                 std::to_string(server.size()));
  }
  if (req.contains("fault")) {
    if (!req["fault"].is_string()) return bad("'fault' must be a string");
    auto kind = parse_fault_kind(req["fault"].get<std::string>());
    if (!kind) return kind.error();
    fault_command cmd{*kind, 0};
    if (takes_value(*kind)) {
      if (!req.contains("value") || !req["value"].is_number_unsigned())
        return bad(std::string{"fault '"} + to_string(*kind) + "' needs a numeric 'value'");
      cmd.value = req["value"].get<uint64_t>();
    }
    auto err = all ? server.apply_fault_all(cmd) : server.apply_fault(index, cmd);
    if (err) return err;
    return nlohmann::json::object();
  }
  if (all) return bad("only faults can address \"all\" endpoints");
  if (req.contains("revoke")) {
    if (!req["revoke"].is_string()) return bad("'revoke' must be a thumbprint string");
    auto t = thumbprint::parse(req["revoke"].get<std::string>());
    if (!t) return t.error();
    auto removed = server.revoke_manager(index, *t);
    if (!removed) return removed.error();
    if (!*removed)
      return make_error(ec::not_found, "manager " + t->to_string() +
                                           " is not registered with endpoint " +
                                           std::to_string(index));
    return nlohmann::json::object();
  }
  if (req.contains("managers")) {
    auto list = server.managers(index);
    if (!list) return list.error();
    nlohmann::json out = nlohmann::json::array();
    for (const auto& t : *list) out.push_back(t.to_string());
    return nlohmann::json{{"managers", out}};
  }
  return bad("the request has none of 'fault', 'revoke', 'managers'");
}

caf::expected<nlohmann::json> control_call(const std::filesystem::path& socket_path,
                                           const nlohmann::json& request,
                                           std::chrono::milliseconds deadline) {
  int fd = connect_unix(socket_path);
  if (fd < 0) {
    if (errno == ENAMETOOLONG) return path_too_long(socket_path);
    return make_error(ec::not_found, "no agent answers on " + socket_path.string() + " (" +
                                         errno_text(errno) + "); is it running?");
  }
  auto until = std::chrono::steady_clock::now() + deadline;
  std::string buffer;
  std::string line;
  bool ok = write_all(fd, request.dump() + "\n") && read_line(fd, buffer, line, until);
  ::close(fd);
  if (!ok)
    return make_error(ec::timeout, "the agent on " + socket_path.string() +
                                       " did not answer in time; check its log");
  auto reply = nlohmann::json::parse(line, nullptr, false);
  if (reply.is_discarded() || !reply.is_object())
    return make_error(ec::protocol_error,
                      "the agent on " + socket_path.string() + " answered something not JSON");
  return reply;
}

}  // namespace certfleet::agent
