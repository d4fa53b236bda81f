// The daemon's control socket, assembled from its parts: the JSON-lines server
// (common/jsonl_server.hpp) carries lines, socket_security.hpp keeps strangers out, protocol.hpp
// parses requests and decides access, ops.hpp answers them and event_stream.hpp streams events.
#include "control/control_server.hpp"

#include <sys/un.h>
#include <unistd.h>

#include <atomic>

#include "config/state_layout.hpp"
#include "control/event_stream.hpp"
#include "control/ops.hpp"
#include "control/protocol.hpp"
#include "control/socket_security.hpp"

namespace certfleet::control {
namespace {

using json = nlohmann::json;

class server_impl final : public control_server {
 public:
  server_impl(manager& m, server_options opts, std::optional<gid_t> ro_gid)
      : manager_(m), opts_(std::move(opts)), read_only_gid_(ro_gid), daemon_uid_(::geteuid()) {}

  ~server_impl() override { stop(); }

  caf::error listen() {
    jsonl::server_options o;
    o.socket_path = opts_.socket_path;
    o.socket_mode = read_only_gid_ ? 0660 : 0600;
    o.socket_group = read_only_gid_;
    o.max_clients = opts_.max_clients;
    o.max_line = max_request_line;
    o.service = "certfleetd";
    o.already_running_hint =
        "stop it first, or give this one another state_dir or daemon.control_socket";
    auto srv = jsonl::server::start(std::move(o),
                                    [this](const peer_identity& peer) { return accept(peer); });
    if (!srv) return srv.error();
    server_ = std::move(*srv);
    return {};
  }

  void stop() override {
    if (server_) server_->stop();
  }

  const std::string& socket_path() const override { return opts_.socket_path; }

 private:
  caf::expected<jsonl::request_fn> accept(const peer_identity& peer) {
    auto access = decide_access(peer, daemon_uid_, read_only_gid_);
    if (access == access_level::refused) return refused_peer(peer);
    return jsonl::request_fn{[this, peer, access](jsonl::connection& c, const json& id, json& doc) {
      return handle(c, peer, access, id, doc);
    }};
  }

  /// Handles one request; false when the connection must close.
  bool handle(jsonl::connection& c, const peer_identity& peer, access_level access, const json& id,
              json& doc) {
    request req;
    if (auto err = parse_request(doc, id, req)) return c.write(error_reply(req.id, err));
    if (access != access_level::full && required_access(req.op) == access_level::full)
      return c.write(error_reply(req.id, read_only_refusal(peer, req.op)));
    if (req.op == "events.subscribe")
      return stream_events(c, manager_, req, opts_.subscriber_queue_lines);
    auto handler = find_op(req.op);
    if (!handler)
      return c.write(
          error_reply(req.id, make_error(ec::invalid_argument, "unknown op \"" + req.op + "\"")));
    op_context ctx{manager_, peer};
    auto result = handler(ctx, req);
    scrub_passwords(req.args);
    return c.reply(req.id, result);
  }

  manager& manager_;
  server_options opts_;
  std::optional<gid_t> read_only_gid_;
  uid_t daemon_uid_;
  std::unique_ptr<jsonl::server> server_;
};

}  // namespace

server_options options_from(const settings& cfg) {
  server_options opts;
  opts.socket_path = cfg.daemon.control_socket.empty()
                         ? state_layout{cfg.state_dir}.control_socket().string()
                         : cfg.daemon.control_socket;
  opts.read_only_group = cfg.daemon.read_only_group;
  return opts;
}

caf::expected<std::unique_ptr<control_server>> control_server::start(manager& m,
                                                                     server_options opts) {
  if (opts.socket_path.empty() || opts.socket_path.size() >= sizeof(sockaddr_un::sun_path))
    return make_error(ec::bad_config,
                      "control socket path \"" + opts.socket_path + "\" must be 1 to " +
                          std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                          " bytes long; set daemon.control_socket to a shorter path");
  auto ro_gid = resolve_group(opts.read_only_group);
  if (!ro_gid) return ro_gid.error();
  auto dir = std::filesystem::absolute(opts.socket_path).parent_path();
  if (auto err = prepare_directory(dir, *ro_gid)) return err;
  auto srv = std::make_unique<server_impl>(m, std::move(opts), *ro_gid);
  if (auto err = srv->listen()) return err;
  return std::unique_ptr<control_server>(std::move(srv));
}

}  // namespace certfleet::control
