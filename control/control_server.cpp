#include "control/control_server.hpp"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/fs.hpp"
#include "config/state_layout.hpp"
#include "control/protocol.hpp"

namespace certfleet::control {
namespace {

using json = nlohmann::json;

json optional_thumbprint(const std::optional<thumbprint>& t) {
  return t ? json(t->to_string()) : json(nullptr);
}

json view_json(const server_view& v, bool with_inventory) {
  const auto& r = v.record;
  json j{{"id", r.id},
         {"name", r.name},
         {"host", r.host},
         {"port", r.port},
         {"address", format_address(r.host, r.port)},
         {"state", to_string(r.state)},
         {"account", r.account},
         {"expected_thumbprint", optional_thumbprint(r.expected)},
         {"presented_thumbprint", optional_thumbprint(r.presented)},
         {"pinned_thumbprint", optional_thumbprint(r.pinned)},
         {"validated_by", r.validated_by},
         {"remote_id", r.remote_id},
         {"last_error", r.last_error},
         {"created_ms", r.created_ms},
         {"updated_ms", r.updated_ms},
         {"last_seen_ms", r.last_seen_ms},
         {"last_collection_ms", r.last_collection_ms},
         {"failed_attempts", r.failed_attempts},
         {"connected", v.connected},
         {"credentials_retained", v.credentials_retained}};
  if (with_inventory) {
    if (v.inventory_json.empty()) {
      j["inventory"] = nullptr;
    } else {
      auto inv = json::parse(v.inventory_json, nullptr, false);
      j["inventory"] = inv.is_discarded() ? json(v.inventory_json) : inv;
    }
  }
  return j;
}

json latency_json(const latency_histogram::summary& l) {
  return {{"count", l.count},
          {"p50_ms", l.p50_ms},
          {"p90_ms", l.p90_ms},
          {"p99_ms", l.p99_ms},
          {"max_ms", l.max_ms}};
}

json status_json(const status_view& s) {
  json per_state = json::object();
  for (const auto& [state, count] : s.per_state) per_state[state] = count;
  return {{"servers", s.servers},
          {"per_state", per_state},
          {"connected", s.connected},
          {"handshakes", s.handshakes},
          {"handshake_failures", s.handshake_failures},
          {"resumed_handshakes", s.resumed_handshakes},
          {"collections", s.collections},
          {"latency",
           {{"handshake", latency_json(s.handshake_latency)},
            {"collection", latency_json(s.collection_latency)}}},
          {"last_event_seq", s.last_event_seq},
          {"last_errors", s.last_errors},
          {"manager_thumbprint", s.manager_thumbprint},
          {"manager_not_after", s.manager_not_after}};
}

json event_json(const event_record& e) {
  auto details = json::parse(e.details.empty() ? "{}" : e.details, nullptr, false);
  return {{"seq", e.seq},         {"time_ms", e.time_ms},
          {"type", e.type},       {"server_id", e.server_id},
          {"address", e.address}, {"details", details.is_discarded() ? json(e.details) : details}};
}

using jsonl::dump_line;

/// Takes a password out of a JSON field into secret memory and scrubs the field.
caf::expected<secret_bytes> take_password(json& obj, const std::string& op) {
  auto it = obj.find("password");
  if (it == obj.end() || !it->is_string())
    return make_error(ec::invalid_argument, op + ": argument \"password\" is required and must "
                                                 "be a string");
  auto& text = it->get_ref<std::string&>();
  auto secret = to_secret(text);
  scrub(text);
  return secret;
}

/// Builds an add request from one JSON object (server.add's args or one server.add_bulk entry).
caf::expected<add_server_request> add_request_from(json& obj, const std::string& op) {
  request view;  // lets the argument helpers name the op
  view.op = op;
  view.args = json::object();
  for (const char* key : {"host", "port", "name", "account", "expected_thumbprint"})
    if (auto it = obj.find(key); it != obj.end()) view.args[key] = *it;
  add_server_request req;
  auto host = string_arg(view, "host");
  if (!host) return host.error();
  if (host->empty())
    return make_error(ec::invalid_argument, op + ": argument \"host\" must not be empty");
  req.host = *host;
  if (view.args.contains("port")) {
    auto port = port_arg(view, "port");
    if (!port) return port.error();
    req.port = *port;
  } else {
    req.port = default_server_port;
  }
  auto name = optional_string_arg(view, "name");
  if (!name) return name.error();
  req.name = name->value_or("");
  auto account = string_arg(view, "account");
  if (!account) return account.error();
  if (account->empty())
    return make_error(ec::invalid_argument, op + ": argument \"account\" must not be empty");
  req.account = *account;
  auto expected = optional_string_arg(view, "expected_thumbprint");
  if (!expected) return expected.error();
  if (*expected && !(*expected)->empty()) {
    auto t = thumbprint::parse(**expected);
    if (!t) return t.error();
    req.expected = *t;
  }
  auto password = take_password(obj, op);
  if (!password) return password.error();
  req.password = std::move(*password);
  return req;
}

/// What one subscriber's connection and the manager's bus thread share. The bus side only appends
/// under a short lock and signals the eventfd; it never waits for the connection.
struct subscriber_queue {
  std::mutex mutex;
  std::deque<std::string> lines;
  size_t max_lines = 0;
  uint64_t last_seq = 0;   // seq of the last event queued (or skipped by the local filter)
  uint64_t replay_to = 0;  // follow=false: stop once this seq has been seen
  bool follow = true;
  event_filter local_filter;  // follow=false filters here, so every seq is seen
  bool replay_done = false;
  bool cut_off = false;
  std::string cut_reason;
  int wake_fd = -1;

  void wake() {
    uint64_t one = 1;
    // Non-blocking eventfd: a full counter still means "wake up", so a failed write is harmless.
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof(one));
  }

  bool on_event(const event_record& e) {
    std::lock_guard<std::mutex> lock(mutex);
    if (replay_done || cut_off) return false;
    bool wanted = (local_filter.type.empty() || local_filter.type == e.type) &&
                  (local_filter.server_id.empty() || local_filter.server_id == e.server_id);
    if (wanted) {
      if (lines.size() >= max_lines) {
        cut_off = true;
        cut_reason =
            "the subscriber fell behind: " + std::to_string(max_lines) +
            " events were waiting to be sent; resubscribe with since=" + std::to_string(last_seq) +
            " to continue without loss";
        wake();
        return false;
      }
      lines.push_back(dump_line(json{{"event", event_json(e)}}));
    }
    last_seq = e.seq;
    if (!follow && e.seq >= replay_to) replay_done = true;
    wake();
    return !replay_done;
  }

  void on_cutoff(uint64_t manager_last_seq, const std::string& why) {
    std::lock_guard<std::mutex> lock(mutex);
    if (cut_off || replay_done) return;
    cut_off = true;
    // The manager's count can run ahead of what this queue kept; resuming from the lower is safe.
    last_seq = std::min(last_seq, manager_last_seq);
    cut_reason = why;
    wake();
  }
};

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
    stopping_ = true;
    if (server_) server_->stop();
  }

  const std::string& socket_path() const override { return opts_.socket_path; }

 private:
  caf::expected<jsonl::request_fn> accept(const peer_identity& peer) {
    auto access = decide_access(peer, daemon_uid_, read_only_gid_);
    if (access == access_level::refused)
      return make_error(ec::permission_denied,
                        "uid " + std::to_string(peer.uid) +
                            " may not use certfleetd's control socket; run certfleet as the "
                            "daemon's user or root, or ask for membership of "
                            "daemon.read_only_group");
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
      return c.write(error_reply(
          req.id, make_error(ec::permission_denied, req.op + " changes servers or trust; uid " +
                                                        std::to_string(peer.uid) +
                                                        " has read-only access (member of "
                                                        "daemon.read_only_group)")));
    if (req.op == "events.subscribe") return subscribe(c, req);
    auto result = dispatch(peer, req);
    scrub_passwords(req.args);
    return c.reply(req.id, result);
  }

  caf::expected<json> dispatch(const peer_identity& peer, request& req) {
    const std::string by = "admin (uid " + std::to_string(peer.uid) + ")";
    if (req.op == "status") return status_json(manager_.status());
    if (req.op == "server.list") {
      auto views = manager_.list();
      if (!views) return views.error();
      json servers = json::array();
      for (const auto& v : *views) servers.push_back(view_json(v, false));
      return json{{"servers", std::move(servers)}};
    }
    if (req.op == "server.add") {
      auto add = add_request_from(req.args, req.op);
      if (!add) return add.error();
      auto v = manager_.add_server(std::move(*add));
      if (!v) return v.error();
      return view_json(*v, false);
    }
    if (req.op == "server.add_bulk") return add_bulk(req);
    if (req.op == "server.trust_manifest") return trust_manifest(req, by);
    auto id = string_arg(req, "id");
    if (!id) return id.error();
    if (req.op == "server.show") {
      auto v = manager_.show(*id);
      if (!v) return v.error();
      return view_json(*v, true);
    }
    if (req.op == "server.trust") {
      auto text = string_arg(req, "thumbprint");
      if (!text) return text.error();
      auto t = thumbprint::parse(*text);
      if (!t) return t.error();
      auto v = manager_.trust(*id, *t, by);
      if (!v) return v.error();
      return view_json(*v, false);
    }
    if (req.op == "server.reject") {
      auto v = manager_.reject(*id);
      if (!v) return v.error();
      return view_json(*v, false);
    }
    if (req.op == "server.remove") {
      if (auto err = manager_.remove(*id)) return err;
      return json{{"id", *id}, {"removed", true}};
    }
    if (req.op == "server.credentials") {
      auto account = string_arg(req, "account");
      if (!account) return account.error();
      auto password = take_password(req.args, req.op);
      if (!password) return password.error();
      auto v = manager_.set_credentials(*id, *account, std::move(*password));
      if (!v) return v.error();
      return view_json(*v, false);
    }
    return make_error(ec::invalid_argument, "unknown op \"" + req.op + "\"");
  }

  caf::expected<json> add_bulk(request& req) {
    auto it = req.args.find("servers");
    if (it == req.args.end() || !it->is_array())
      return make_error(ec::invalid_argument,
                        "server.add_bulk: argument \"servers\" must be an array of objects");
    // Entries that parse go to the manager as one batch (one credential flush, one fsync); the
    // others keep their own error. Results stay in entry order.
    std::vector<caf::expected<server_view>> outcome;
    std::vector<add_server_request> batch;
    std::vector<size_t> batch_index;  // entry index of each batch element
    for (size_t i = 0; i < it->size(); ++i) {
      auto& entry = (*it)[i];
      outcome.emplace_back(
          make_error(ec::invalid_argument,
                     "server.add_bulk: entry " + std::to_string(i) + " is not an object"));
      if (!entry.is_object()) continue;
      auto add = add_request_from(entry, "server.add_bulk entry " + std::to_string(i));
      if (!add) {
        outcome.back() = add.error();
        continue;
      }
      outcome.back() = make_error(ec::timeout, "server.add_bulk entry " + std::to_string(i) +
                                                   ": the manager gave no answer for it; check "
                                                   "'certfleet server list' and retry");
      batch.push_back(std::move(*add));
      batch_index.push_back(i);
    }
    auto added_views = manager_.add_servers(std::move(batch));
    for (size_t k = 0; k < added_views.size() && k < batch_index.size(); ++k)
      outcome[batch_index[k]] = std::move(added_views[k]);
    json results = json::array();
    size_t added = 0;
    for (size_t i = 0; i < outcome.size(); ++i) {
      json result{{"index", i}};
      auto& v = outcome[i];
      if (v) {
        ++added;
        result["ok"] = true;
        result["server"] = view_json(*v, false);
      } else {
        result["ok"] = false;
        result["error"] = error_json(v.error());
      }
      results.push_back(std::move(result));
    }
    return json{{"results", std::move(results)}, {"added", added}, {"failed", it->size() - added}};
  }

  /// Trusts every server whose address and presented thumbprint match a manifest entry.
  caf::expected<json> trust_manifest(request& req, const std::string& by) {
    auto it = req.args.find("entries");
    if (it == req.args.end() || !it->is_array())
      return make_error(ec::invalid_argument,
                        "server.trust_manifest: argument \"entries\" must be an array of "
                        "{address, port, thumbprint} objects");
    struct entry {
      std::string address;
      thumbprint expected;
      bool matched = false;
    };
    std::vector<entry> entries;
    std::unordered_map<std::string, size_t> by_address;
    for (size_t i = 0; i < it->size(); ++i) {
      const auto& e = (*it)[i];
      std::string where = "server.trust_manifest: entry " + std::to_string(i);
      if (!e.is_object() || !e.contains("address") || !e["address"].is_string() ||
          !e.contains("port") || !e["port"].is_number_integer() || !e.contains("thumbprint") ||
          !e["thumbprint"].is_string())
        return make_error(ec::invalid_argument,
                          where +
                              " needs \"address\" (string), \"port\" (integer) and "
                              "\"thumbprint\" (string)");
      auto port = e["port"].get<int64_t>();
      if (port < 1 || port > 65535)
        return make_error(ec::invalid_argument, where + " has a port outside 1..65535");
      auto t = thumbprint::parse(e["thumbprint"].get<std::string>());
      if (!t) return make_error(ec::bad_thumbprint, where + ": " + describe(t.error()));
      auto host = e["address"].get<std::string>();
      if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
      entries.push_back({format_address(host, static_cast<uint16_t>(port)), *t});
      by_address[entries.back().address] = entries.size() - 1;
    }
    auto views = manager_.list();
    if (!views) return views.error();
    json results = json::array();
    size_t trusted = 0, already = 0, skipped = 0, failed = 0;
    for (const auto& v : *views) {
      const auto& r = v.record;
      auto address = format_address(r.host, r.port);
      auto found = by_address.find(address);
      if (found == by_address.end()) continue;
      auto* match = &entries[found->second];
      match->matched = true;
      json result{{"id", r.id}, {"address", address}};
      if (r.state == server_state::trusted && r.pinned && *r.pinned == match->expected) {
        result["outcome"] = "already_trusted";
        ++already;
      } else if (!r.presented) {
        result["outcome"] = "not_presented";
        result["message"] = "the server has not presented a certificate yet (state " +
                            std::string(to_string(r.state)) + "); run this again later";
        ++skipped;
      } else if (*r.presented != match->expected) {
        result["outcome"] = "mismatch";
        result["message"] = "presented " + r.presented->to_string() + ", the manifest says " +
                            match->expected.to_string() + "; not trusted";
        ++skipped;
      } else if (auto tv = manager_.trust(r.id, match->expected, by); tv) {
        result["outcome"] = "trusted";
        ++trusted;
      } else {
        result["outcome"] = "error";
        result["error"] = error_json(tv.error());
        ++failed;
      }
      results.push_back(std::move(result));
    }
    json unmatched = json::array();
    for (const auto& e : entries)
      if (!e.matched) unmatched.push_back(e.address);
    return json{{"results", std::move(results)},
                {"trusted", trusted},
                {"already_trusted", already},
                {"skipped", skipped},
                {"failed", failed},
                {"unmatched_entries", std::move(unmatched)}};
  }

  /// Streams events until the replay ends (follow=false), a cutoff, the client leaving or stop().
  bool subscribe(jsonl::connection& c, request& req) {
    auto since = uint_arg(req, "since", 0, UINT64_MAX);
    auto type = optional_string_arg(req, "type");
    auto server = optional_string_arg(req, "server");
    auto follow = bool_arg(req, "follow", false);
    caf::error bad;
    if (!since)
      bad = since.error();
    else if (!type)
      bad = type.error();
    else if (!server)
      bad = server.error();
    else if (!follow)
      bad = follow.error();
    if (!bad && *type && !type->value().empty()) {
      const auto& known = event_types();
      if (std::find(known.begin(), known.end(), **type) == known.end()) {
        std::string list;
        for (const auto& t : known) list += (list.empty() ? "" : ", ") + t;
        bad = make_error(ec::invalid_argument,
                         "events.subscribe: unknown event type \"" + **type + "\"; known: " + list);
      }
    }
    if (bad) return c.write(error_reply(req.id, bad));

    event_filter filter{type->value_or(""), server->value_or("")};
    auto q = std::make_shared<subscriber_queue>();
    q->max_lines = opts_.subscriber_queue_lines;
    q->follow = *follow;
    q->last_seq = *since;
    if (!*follow) {
      // Replay up to the newest event now stored. Filtering locally means every seq passes
      // through the queue, so the end of the replay is seen even when it does not match.
      q->replay_to = manager_.status().last_event_seq;
      if (q->replay_to <= *since) return c.write(ok_reply(req.id, json{{"last_seq", *since}}));
      q->local_filter = filter;
      filter = event_filter{};
    }
    int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake < 0)
      return c.write(error_reply(
          req.id, make_error(ec::io_error, "cannot create an eventfd: " + errno_text(errno))));
    q->wake_fd = wake;
    auto sub = manager_.subscribe(
        *since, filter, [q](const event_record& e) { return q->on_event(e); },
        [q](uint64_t last, const std::string& why) { q->on_cutoff(last, why); });
    if (!sub) {
      ::close(wake);
      return c.write(error_reply(req.id, sub.error()));
    }
    bool keep_connection = stream(c, *q, req.id);
    // Unsubscribe first: after that the bus no longer touches the queue's eventfd.
    sub->reset();
    {
      std::lock_guard<std::mutex> lock(q->mutex);
      q->wake_fd = -1;
      q->cut_off = true;
    }
    ::close(wake);
    return keep_connection;
  }

  bool stream(jsonl::connection& c, subscriber_queue& q, const json& id) {
    char sink[4096];
    for (;;) {
      pollfd fds[2] = {{c.fd(), POLLIN, 0}, {q.wake_fd, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      if (stopping_ || c.stopping()) return false;
      if (fds[0].revents) {
        // A streaming connection takes no further requests: input is discarded, EOF ends it.
        auto n = ::recv(c.fd(), sink, sizeof(sink), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
      }
      if (!fds[1].revents) continue;
      uint64_t counter;
      [[maybe_unused]] auto r = ::read(q.wake_fd, &counter, sizeof(counter));
      std::deque<std::string> lines;
      bool done, cut;
      uint64_t last;
      std::string reason;
      {
        std::lock_guard<std::mutex> lock(q.mutex);
        lines.swap(q.lines);
        done = q.replay_done;
        cut = q.cut_off;
        last = q.last_seq;
        reason = q.cut_reason;
      }
      for (const auto& l : lines)
        if (!c.write(l)) return false;
      if (cut) {
        c.write(dump_line(json{{"cutoff", {{"last_seq", last}, {"reason", reason}}}}));
        return false;
      }
      if (done) return c.write(ok_reply(id, json{{"last_seq", last}}));
    }
  }

  manager& manager_;
  server_options opts_;
  std::optional<gid_t> read_only_gid_;
  uid_t daemon_uid_;
  std::atomic<bool> stopping_{false};
  std::unique_ptr<jsonl::server> server_;
};

caf::expected<std::optional<gid_t>> resolve_group(const std::string& name) {
  if (name.empty()) return std::optional<gid_t>{};
  group grp{};
  group* found = nullptr;
  std::vector<char> buf(16384);
  int rc;
  while ((rc = ::getgrnam_r(name.c_str(), &grp, buf.data(), buf.size(), &found)) == ERANGE)
    buf.resize(buf.size() * 2);
  if (rc != 0 || !found)
    return make_error(ec::bad_config, "daemon.read_only_group \"" + name +
                                          "\" is not a group on this system; create it (groupadd " +
                                          name + ") or leave daemon.read_only_group empty");
  return std::optional<gid_t>{found->gr_gid};
}

/// Creates or checks the socket's directory (see the header for the rules).
caf::error prepare_directory(const std::filesystem::path& dir, std::optional<gid_t> ro_gid) {
  mode_t want = ro_gid ? 0710 : 0700;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT)
      return make_error(ec::io_error, "cannot inspect control socket directory " + dir.string() +
                                          ": " + errno_text(errno));
    if (auto err = ensure_directory(dir, want)) return err;
    if (ro_gid && ::chown(dir.c_str(), static_cast<uid_t>(-1), *ro_gid) != 0)
      return make_error(ec::io_error, "cannot give control socket directory " + dir.string() +
                                          " to the read-only group: " + errno_text(errno));
    return {};
  }
  if (!S_ISDIR(st.st_mode))
    return make_error(ec::io_error, "control socket directory " + dir.string() +
                                        " is not a directory; set daemon.control_socket to a path "
                                        "in a private directory");
  char mode[8];
  std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
  if (st.st_uid != ::geteuid())
    return make_error(ec::insecure_permissions,
                      "control socket directory " + dir.string() + " belongs to uid " +
                          std::to_string(st.st_uid) + ", not to the daemon (uid " +
                          std::to_string(::geteuid()) + "); chown it or choose another path");
  if (st.st_mode & 0027)
    return make_error(ec::insecure_permissions,
                      "control socket directory " + dir.string() + " is mode " + mode +
                          "; others or the group could reach or replace the socket: run chmod " +
                          (ro_gid ? "710 " : "700 ") + dir.string());
  if (!ro_gid && (st.st_mode & 0070))
    return make_error(ec::insecure_permissions,
                      "control socket directory " + dir.string() + " is mode " + mode +
                          "; it must be 0700: run chmod 700 " + dir.string());
  if (ro_gid && (st.st_gid != *ro_gid || !(st.st_mode & 0010)))
    return make_error(ec::insecure_permissions,
                      "daemon.read_only_group is set but its members cannot reach control socket "
                      "directory " +
                          dir.string() + " (mode " + mode + ", gid " + std::to_string(st.st_gid) +
                          "): run chgrp " + std::to_string(*ro_gid) + " " + dir.string() +
                          " && chmod 710 " + dir.string() +
                          ", or point daemon.control_socket to a directory of its own");
  return {};
}

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
