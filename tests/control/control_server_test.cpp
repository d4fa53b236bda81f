// The control socket end to end: the real manager on a temporary state directory, real Unix
// sockets, real peer credentials (forked children with other uids and groups), the real CLI.
#include "control/control_server.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/exit_code.hpp"
#include "common/fs.hpp"
#include "config/state_layout.hpp"
#include "control/control_client.hpp"
#include "crypto/certificate_store.hpp"
#include "crypto/sealing.hpp"
#include "storage/state_store.hpp"
#include "tests/support/dead_port.hpp"
#include "tests/support/process.hpp"

namespace certfleet::control {
namespace {

using json = nlohmann::json;

constexpr uid_t nobody_uid = 65534;
constexpr gid_t nogroup_gid = 65534;

using ::certfleet::test::dead_port;
using ::certfleet::test::temp_dir;

/// What `certfleet init` leaves behind: master key, manager identity, database.
caf::error prepare_state_dir(const settings& cfg) {
  state_layout layout{cfg.state_dir};
  if (auto err = ensure_directory(layout.root, 0700)) return err;
  if (auto key = master_key::create(layout.master_key_file()); !key) return key.error();
  auto store = certificate_store::open(layout.certs_dir(), true);
  if (!store) return store.error();
  auto id = identity::generate({"certfleet-test-manager", "certfleet"}, std::chrono::hours{24},
                               "test manager");
  if (!id) return id.error();
  if (auto err = store->install(*id)) return err;
  auto db = state_store::open(layout.db_dir());
  if (!db) return db.error();
  return {};
}

mode_t mode_of(const std::filesystem::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

/// Runs `body` in a forked child with other credentials and returns what it wrote, or "child
/// failed: ..." when dropping privileges failed. `dac_override` keeps CAP_DAC_OVERRIDE so the
/// child passes the file permissions and reaches the peer check itself.
std::string run_as(uid_t uid, gid_t gid, std::vector<gid_t> groups, bool dac_override,
                   const std::function<std::string()>& body) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    std::string out;
    bool dropped = ::prctl(PR_SET_KEEPCAPS, dac_override ? 1 : 0, 0, 0, 0) == 0 &&
                   ::setgroups(groups.size(), groups.data()) == 0 && ::setgid(gid) == 0 &&
                   ::setuid(uid) == 0;
    if (dropped && dac_override) {
      __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
      __user_cap_data_struct data[2]{};
      data[0].effective = data[0].permitted = 1u << CAP_DAC_OVERRIDE;
      dropped = ::syscall(SYS_capset, &header, data) == 0;
    }
    out = dropped ? body() : std::string("child failed: ") + std::strerror(errno);
    [[maybe_unused]] auto n = ::write(pipe_fds[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

/// Runs the real `certfleet` binary with `input` on stdin; stdout and stderr come back apart.
::certfleet::test::run_result run_cli(std::vector<std::string> args, const std::string& input) {
  args.insert(args.begin(), ::certfleet::test::binary("apps/certfleet"));
  return ::certfleet::test::run(args, input);
}

class control_socket : public ::testing::Test {
 protected:
  void SetUp() override {
    // Children with other uids must be able to traverse the temp root to reach run/.
    ::chmod(root_.path().c_str(), 0711);
    cfg_.state_dir = root_.path() / "state";
    cfg_.daemon.backoff_initial_ms = 60000;  // dead servers stay quietly pending
    cfg_.daemon.backoff_max_ms = 60000;
    ASSERT_FALSE(prepare_state_dir(cfg_));
    auto m = manager::start(cfg_);
    ASSERT_TRUE(m) << describe(m.error());
    manager_ = std::move(*m);
  }

  void TearDown() override {
    if (server_) server_->stop();
    if (manager_) manager_->stop();
  }

  void start_server(server_options opts) {
    auto s = control_server::start(*manager_, std::move(opts));
    ASSERT_TRUE(s) << describe(s.error());
    server_ = std::move(*s);
  }

  void start_default_server() { start_server(options_from(cfg_)); }

  control_client connect() {
    auto c = control_client::connect(server_->socket_path());
    EXPECT_TRUE(c) << describe(c.error());
    return std::move(*c);
  }

  /// server.add args for a server that never answers; each address may be added once.
  json add_args(const std::string& name, uint16_t port = 0) {
    return {{"host", "127.0.0.1"},
            {"port", port ? port : dead_.port()},
            {"name", name},
            {"account", "backup-admin"},
            {"password", "correct horse"}};
  }

  /// Every event from `since` up to the newest, via a non-following subscription.
  std::vector<json> replay(control_client& c, uint64_t since, uint64_t* last = nullptr) {
    std::vector<json> events;
    auto end = c.subscribe({{"since", since}, {"follow", false}}, [&](const json& e) {
      events.push_back(e);
      return true;
    });
    EXPECT_TRUE(end) << describe(end.error());
    if (end) {
      EXPECT_FALSE(end->cut_off) << end->reason;
    }
    if (last && end) *last = end->last_seq;
    return events;
  }

  temp_dir root_;
  settings cfg_;
  dead_port dead_;
  std::unique_ptr<manager> manager_;
  std::unique_ptr<control_server> server_;
};

TEST_F(control_socket, the_socket_is_mode_0600_in_a_0700_directory) {
  start_default_server();
  EXPECT_EQ(server_->socket_path(), state_layout{cfg_.state_dir}.control_socket().string());
  EXPECT_EQ(mode_of(server_->socket_path()), 0600u);
  EXPECT_EQ(mode_of(cfg_.state_dir), 0700u);
}

TEST_F(control_socket, a_socket_directory_open_to_others_is_refused) {
  auto run = root_.path() / "open";
  std::filesystem::create_directory(run);
  ::chmod(run.c_str(), 0755);
  auto s = control_server::start(*manager_, {(run / "control.sock").string(), "", 4, 10});
  ASSERT_FALSE(s);
  EXPECT_EQ(code_of(s.error()), ec::insecure_permissions);
  EXPECT_NE(describe(s.error()).find("chmod 700"), std::string::npos);
}

TEST_F(control_socket, an_unknown_read_only_group_is_a_configuration_error) {
  auto opts = options_from(cfg_);
  opts.read_only_group = "certfleet-no-such-group";
  auto s = control_server::start(*manager_, opts);
  ASSERT_FALSE(s);
  EXPECT_EQ(code_of(s.error()), ec::bad_config);
  EXPECT_NE(describe(s.error()).find("certfleet-no-such-group"), std::string::npos);
}

TEST_F(control_socket, a_second_daemon_is_refused_and_a_stale_socket_is_replaced) {
  start_default_server();
  auto second = control_server::start(*manager_, options_from(cfg_));
  ASSERT_FALSE(second);
  EXPECT_EQ(code_of(second.error()), ec::already_exists);
  server_->stop();
  server_.reset();

  // A socket file left by a daemon that died: bound, then closed without unlink.
  auto path = options_from(cfg_).socket_path;
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  start_default_server();
  auto c = connect();
  EXPECT_TRUE(c.call("status", json::object()));
}

TEST_F(control_socket, a_malformed_line_gets_an_error_and_the_next_request_is_served) {
  start_default_server();
  auto c = connect();
  ASSERT_FALSE(c.send_raw("{\"id\": 1, \"op\": \n"));
  auto line = c.read_line();
  ASSERT_TRUE(line);
  auto reply = json::parse(*line);
  EXPECT_EQ(reply["ok"], false);
  EXPECT_EQ(reply["error"]["code"], "invalid_argument");
  EXPECT_EQ(reply["error"]["exit_code"], 2);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("not valid JSON"), std::string::npos);

  ASSERT_FALSE(c.send_raw("{\"id\": 2, \"op\": \"server.teleport\"}\n"));
  reply = json::parse(*c.read_line());
  EXPECT_EQ(reply["id"], 2);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("unknown op"), std::string::npos);

  auto status = c.call("status", json::object());
  ASSERT_TRUE(status) << describe(status.error());
  EXPECT_EQ((*status)["servers"], 0);
}

TEST_F(control_socket, missing_or_ill_typed_arguments_are_named_in_the_error) {
  start_default_server();
  auto c = connect();
  auto r = c.call("server.add", {{"host", "h"}, {"port", "9401"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(code_of(r.error()), ec::invalid_argument);
  EXPECT_NE(describe(r.error()).find("\"port\""), std::string::npos);
  auto t = c.call("server.trust", {{"id", "s-1"}, {"thumbprint", "XYZ"}});
  ASSERT_FALSE(t);
  EXPECT_EQ(code_of(t.error()), ec::bad_thumbprint);
  auto show = c.call("server.show", {{"id", "s-does-not-exist"}});
  ASSERT_FALSE(show);
  EXPECT_EQ(code_of(show.error()), ec::not_found);
}

TEST_F(control_socket, an_oversized_line_is_refused_and_new_connections_are_served) {
  start_default_server();
  auto c = connect();
  std::string huge(max_request_line + 10, 'x');
  // The daemon may close while we are still sending; what matters is the reply it left.
  (void)c.send_raw(huge + "\n");
  auto line = c.read_line();
  ASSERT_TRUE(line) << describe(line.error());
  auto reply = json::parse(*line);
  EXPECT_EQ(reply["error"]["code"], "frame_too_large");
  EXPECT_FALSE(c.read_line());  // closed

  auto fresh = connect();
  auto status = fresh.call("status", json::object());
  EXPECT_TRUE(status) << describe(status.error());
}

// Bad-input matrix: 100 control clients at once, every one connected before any asks; each
// reads, and every tenth adds a server. All are answered and nothing is lost or doubled.
TEST_F(control_socket, a_hundred_concurrent_clients_are_all_served) {
  start_default_server();
  constexpr int clients = 100;
  std::vector<control_client> conns;
  for (int i = 0; i < clients; ++i) conns.push_back(connect());
  std::vector<std::string> failures(clients);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      auto& c = conns[static_cast<size_t>(i)];
      auto& f = failures[static_cast<size_t>(i)];
      if (auto st = c.call("status", json::object()); !st) f += describe(st.error());
      if (i % 10 == 0) {
        // Privileged ports nobody listens on here: the servers stay pending, quietly.
        auto added = c.call("server.add",
                            add_args("many-" + std::to_string(i), static_cast<uint16_t>(1 + i)));
        if (!added) f += describe(added.error());
      }
      if (auto l = c.call("server.list", json::object()); !l) f += describe(l.error());
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < clients; ++i)
    EXPECT_EQ(failures[static_cast<size_t>(i)], "") << "client " << i;
  auto list = conns[0].call("server.list", json::object());
  ASSERT_TRUE(list);
  EXPECT_EQ((*list)["servers"].size(), 10u);
}

TEST_F(control_socket, add_show_list_and_remove_work_through_the_socket) {
  start_default_server();
  auto c = connect();
  auto added = c.call("server.add", add_args("vault-1"));
  ASSERT_TRUE(added) << describe(added.error());
  auto id = (*added)["id"].get<std::string>();
  EXPECT_EQ((*added)["name"], "vault-1");
  EXPECT_EQ((*added)["port"], dead_.port());
  EXPECT_EQ(added->dump().find("correct horse"), std::string::npos);

  auto list = c.call("server.list", json::object());
  ASSERT_TRUE(list);
  ASSERT_EQ((*list)["servers"].size(), 1u);
  EXPECT_EQ((*list)["servers"][0]["id"], id);

  auto show = c.call("server.show", {{"id", id}});
  ASSERT_TRUE(show);
  EXPECT_TRUE(show->contains("inventory"));

  ASSERT_TRUE(c.call("server.remove", {{"id", id}}));
  EXPECT_EQ((*c.call("server.list", json::object()))["servers"].size(), 0u);
}

TEST_F(control_socket, events_since_resumes_without_loss) {
  start_default_server();
  auto c = connect();
  dead_port b, cc;
  ASSERT_TRUE(c.call("server.add", add_args("a")));
  ASSERT_TRUE(c.call("server.add", add_args("b", b.port())));
  uint64_t first_last = 0;
  auto first = replay(c, 0, &first_last);
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first.back()["seq"], first_last);

  ASSERT_TRUE(c.call("server.add", add_args("c", cc.port())));
  uint64_t second_last = 0;
  auto second = replay(c, first_last, &second_last);
  ASSERT_FALSE(second.empty());
  EXPECT_EQ(second.front()["seq"], first_last + 1);

  // Together the two pieces are exactly the full history: gap-free, nothing twice.
  auto all = replay(c, 0);
  std::vector<uint64_t> pieces, whole;
  for (const auto* v : {&first, &second})
    for (const auto& e : *v) pieces.push_back(e["seq"]);
  for (const auto& e : all)
    if (e["seq"].get<uint64_t>() <= second_last) whole.push_back(e["seq"]);
  EXPECT_EQ(pieces, whole);
  for (size_t i = 0; i < whole.size(); ++i) EXPECT_EQ(whole[i], i + 1);
  bool saw_added_c = false;
  for (const auto& e : second)
    saw_added_c |= e["type"] == "server_added" && e["details"].is_object();
  EXPECT_TRUE(saw_added_c);
}

TEST_F(control_socket, a_type_filter_returns_only_that_type_and_still_ends_the_replay) {
  start_default_server();
  auto c = connect();
  ASSERT_TRUE(c.call("server.add", add_args("a")));
  std::vector<json> events;
  auto end =
      c.subscribe({{"since", 0}, {"type", "server_added"}, {"follow", false}}, [&](const json& e) {
        events.push_back(e);
        return true;
      });
  ASSERT_TRUE(end) << describe(end.error());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["type"], "server_added");
  auto bad = c.subscribe({{"type", "server_exploded"}}, [](const json&) { return true; });
  ASSERT_FALSE(bad);
  EXPECT_NE(describe(bad.error()).find("unknown event type"), std::string::npos);
}

TEST_F(control_socket, a_following_subscriber_receives_live_events) {
  start_default_server();
  auto follower = connect();
  auto writer = connect();
  std::string added_id;
  std::thread add([&] {
    auto v = writer.call("server.add", add_args("live"));
    if (v) added_id = (*v)["id"].get<std::string>();
  });
  std::string seen;
  auto end = follower.subscribe({{"since", 0}, {"follow", true}}, [&](const json& e) {
    if (e["type"] != "server_added") return true;
    seen = e["server_id"].get<std::string>();
    return false;
  });
  add.join();
  ASSERT_TRUE(end) << describe(end.error());
  EXPECT_EQ(seen, added_id);
}

TEST_F(control_socket, a_subscriber_that_never_reads_does_not_stop_registrations_and_is_cut_off) {
  auto opts = options_from(cfg_);
  opts.subscriber_queue_lines = 4;
  start_server(opts);
  auto stalled = connect();
  ASSERT_FALSE(
      stalled.send_raw(R"({"id":1,"op":"events.subscribe","args":{"since":0,"follow":true}})"
                       "\n"));

  // Enough events to fill the socket buffers many times over while nobody reads. Distinct
  // loopback addresses on the dead port: refused at once, and each address can be added once.
  auto writer = connect();
  size_t added = 0;
  for (int batch = 0; batch < 3; ++batch) {
    json servers = json::array();
    for (int i = 0; i < 400; ++i) {
      int n = batch * 400 + i;
      auto args = add_args("bulk-" + std::to_string(n));
      args["host"] = "127.0." + std::to_string(n / 250 + 1) + "." + std::to_string(n % 250 + 1);
      servers.push_back(args);
    }
    auto r = writer.call("server.add_bulk", {{"servers", servers}});
    ASSERT_TRUE(r) << describe(r.error());
    added += (*r)["added"].get<size_t>();
  }
  EXPECT_EQ(added, 1200u);

  uint64_t last_event = 0;
  json cutoff;
  for (;;) {
    auto line = stalled.read_line();
    ASSERT_TRUE(line) << describe(line.error());
    auto msg = json::parse(*line);
    if (msg.contains("event")) {
      auto seq = msg["event"]["seq"].get<uint64_t>();
      EXPECT_EQ(seq, last_event + 1);
      last_event = seq;
      continue;
    }
    ASSERT_TRUE(msg.contains("cutoff")) << *line;
    cutoff = msg["cutoff"];
    break;
  }
  EXPECT_EQ(cutoff["last_seq"], last_event);
  EXPECT_NE(cutoff["reason"].get<std::string>().find("since="), std::string::npos);
  EXPECT_FALSE(stalled.read_line());  // closed after the cutoff

  // Resuming from the cutoff's seq continues exactly where the stream stopped.
  uint64_t first = 0;
  auto resumed =
      connect().subscribe({{"since", last_event}, {"follow", false}}, [&](const json& e) {
        first = e["seq"].get<uint64_t>();
        return false;
      });
  ASSERT_TRUE(resumed) << describe(resumed.error());
  EXPECT_EQ(first, last_event + 1);
}

TEST_F(control_socket, a_second_uid_is_refused_by_the_peer_check) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to fork a child with another uid";
  start_default_server();
  auto path = server_->socket_path();
  // CAP_DAC_OVERRIDE gets the child past the 0700 directory: the peer check alone must refuse it.
  auto out = run_as(nobody_uid, nogroup_gid, {}, true, [&] {
    auto c = control_client::connect(path);
    if (!c) return "connect failed: " + describe(c.error());
    auto line = c->read_line();
    return line ? *line : "no line: " + describe(line.error());
  });
  auto reply = json::parse(out, nullptr, false);
  ASSERT_FALSE(reply.is_discarded()) << out;
  EXPECT_EQ(reply["ok"], false);
  EXPECT_EQ(reply["error"]["code"], "permission_denied");
  EXPECT_EQ(reply["error"]["exit_code"], 8);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("uid 65534"), std::string::npos);

  // Without the capability the file permissions stop it before the daemon sees it.
  auto plain = run_as(nobody_uid, nogroup_gid, {}, false, [&] {
    connect_failure why;
    auto c = control_client::connect(path, &why);
    return c ? std::string("connected") : describe(c.error());
  });
  EXPECT_NE(plain.find("permission denied"), std::string::npos) << plain;
}

TEST_F(control_socket, a_read_only_group_member_can_list_but_not_trust) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to fork a child with another uid";
  group* users = ::getgrnam("users");
  if (!users) GTEST_SKIP() << "no 'users' group on this system";
  gid_t users_gid = users->gr_gid;
  server_options opts{(root_.path() / "run" / "control.sock").string(), "users", 8, 100};
  start_server(opts);
  EXPECT_EQ(mode_of(root_.path() / "run"), 0710u);
  EXPECT_EQ(mode_of(server_->socket_path()), 0660u);
  auto admin = connect();
  auto added = admin.call("server.add", add_args("ro-target"));
  ASSERT_TRUE(added);
  auto id = (*added)["id"].get<std::string>();

  auto path = server_->socket_path();
  // A supplementary group only, so the check must use SO_PEERGROUPS, not just the primary gid.
  auto out = run_as(nobody_uid, nogroup_gid, {users_gid}, false, [&] {
    auto c = control_client::connect(path);
    if (!c) return "connect failed: " + describe(c.error());
    auto list = c->call("server.list", json::object());
    std::string r = list ? "list:" + std::to_string((*list)["servers"].size()) : "list:failed";
    auto trust = c->call("server.trust", {{"id", id}, {"thumbprint", std::string(64, 'A')}});
    r += trust ? " trust:ok" : std::string(" trust:") + to_string(code_of(trust.error()));
    auto remove = c->call("server.remove", {{"id", id}});
    r += remove ? " remove:ok" : std::string(" remove:") + to_string(code_of(remove.error()));
    return r;
  });
  EXPECT_EQ(out, "list:1 trust:permission_denied remove:permission_denied");
  EXPECT_TRUE(admin.call("server.show", {{"id", id}}));
}

TEST_F(control_socket, the_cli_reports_a_daemon_that_is_not_running_with_exit_7) {
  auto socket = (root_.path() / "state" / "control.sock").string();
  auto r = run_cli({"status", "--socket", socket}, "");
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_NE(r.err.find("cannot reach certfleetd at " + socket), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("certfleetd --config FILE"), std::string::npos) << r.err;
}

TEST_F(control_socket, the_cli_adds_lists_and_refuses_a_bad_thumbprint) {
  start_default_server();
  auto socket = server_->socket_path();
  auto add = run_cli({"server", "add", "127.0.0.1:" + std::to_string(dead_.port()), "--account",
                      "backup-admin", "--password-stdin", "--name", "cli-1", "--socket", socket},
                     "s3cret\n");
  ASSERT_EQ(add.exit_code, 0) << add.err;
  auto list = run_cli({"--json", "server", "list", "--socket", socket}, "");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto servers = json::parse(list.out);
  ASSERT_EQ(servers.size(), 1u);
  EXPECT_EQ(servers[0]["name"], "cli-1");
  EXPECT_EQ(list.out.find("s3cret"), std::string::npos);

  auto table = run_cli({"server", "list", "--socket", socket}, "");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("cli-1"), std::string::npos);
  EXPECT_NE(table.out.find("pending_registration"), std::string::npos);

  auto id = servers[0]["id"].get<std::string>();
  auto trust = run_cli({"server", "trust", id, "--thumbprint", "NOT-HEX", "--socket", socket}, "");
  EXPECT_EQ(trust.exit_code, 2) << trust.err;
  auto unknown = run_cli({"server", "show", "s-nope", "--socket", socket}, "");
  EXPECT_EQ(unknown.exit_code, 3) << unknown.err;
}

TEST_F(control_socket, the_cli_adds_from_a_csv_file_prints_events_and_reads_a_manifest) {
  start_default_server();
  auto socket = server_->socket_path();
  dead_port second;
  auto csv = root_.path() / "fleet.csv";
  std::ofstream(csv) << "host,port,account,expected_thumbprint,name\n"
                     << "127.0.0.1," << dead_.port() << ",backup-admin,,\"first, with comma\"\n"
                     << "127.0.0.1," << second.port() << ",," << std::string(64, 'a') << ",two\n";
  auto pw = root_.path() / "pw";
  std::ofstream(pw) << "s3cret\n";
  ::chmod(pw.c_str(), 0644);
  auto insecure = run_cli({"server", "add", "--from", csv.string(), "--account", "fallback",
                           "--password-file", pw.string(), "--socket", socket},
                          "");
  EXPECT_EQ(insecure.exit_code, 4) << insecure.err;
  ::chmod(pw.c_str(), 0600);
  auto add = run_cli({"server", "add", "--from", csv.string(), "--account", "fallback",
                      "--password-file", pw.string(), "--socket", socket},
                     "");
  ASSERT_EQ(add.exit_code, 0) << add.err;
  EXPECT_NE(add.out.find("2 added, 0 failed"), std::string::npos) << add.out;

  auto events = run_cli({"--json", "events", "--type", "server_added", "--socket", socket}, "");
  ASSERT_EQ(events.exit_code, 0) << events.err;
  std::istringstream lines(events.out);
  std::string line;
  std::vector<json> added;
  while (std::getline(lines, line)) added.push_back(json::parse(line));
  ASSERT_EQ(added.size(), 2u);
  EXPECT_EQ(added[0]["details"]["name"], "first, with comma");
  EXPECT_EQ(added[1]["details"]["account"], "fallback");

  auto manifest = root_.path() / "manifest.json";
  std::ofstream(manifest) << json{{"endpoints",
                                   {{{"index", 0},
                                     {"address", "127.0.0.1"},
                                     {"port", dead_.port()},
                                     {"sha256", std::string(64, 'B')},
                                     {"admin_account", "backup-admin"}}}}}
                                 .dump();
  auto trust = run_cli(
      {"server", "trust", "--all-matching-manifest", manifest.string(), "--socket", socket}, "");
  EXPECT_EQ(trust.exit_code, 0) << trust.err;
  EXPECT_NE(trust.out.find("not_presented"), std::string::npos) << trust.out;
  EXPECT_NE(trust.out.find("0 trusted"), std::string::npos) << trust.out;
}

}  // namespace
}  // namespace certfleet::control

namespace certfleet::control {
namespace {

class control_input : public control_socket {
 protected:
  void SetUp() override {
    control_socket::SetUp();
    start_default_server();
  }
  /// The error a server.add with `args` gets; an empty error when it was accepted.
  caf::error add_error(const json& args) {
    auto c = connect();
    auto r = c.call("server.add", args);
    return r ? caf::error{} : r.error();
  }
};

TEST_F(control_input, an_empty_or_blank_expected_thumbprint_is_a_usage_error_not_a_dropped_pin) {
  for (const char* blank : {"", " ", "\t"}) {
    auto args = add_args("blank");
    args["expected_thumbprint"] = blank;
    auto err = add_error(args);
    ASSERT_TRUE(err) << "\"" << blank << "\" was accepted";
    EXPECT_EQ(exit_code_for(err), exit_usage);
    EXPECT_NE(describe(err).find("expected_thumbprint"), std::string::npos) << describe(err);
  }
  auto c = connect();
  auto list = c.call("server.list", json::object());
  ASSERT_TRUE(list);
  EXPECT_TRUE((*list)["servers"].empty());
  // Leaving the argument out, or null, still means "no thumbprint given".
  auto args = add_args("none");
  args["expected_thumbprint"] = nullptr;
  EXPECT_FALSE(add_error(args));
}

TEST_F(control_input, control_characters_and_nul_in_hosts_names_and_accounts_are_refused) {
  using namespace std::string_literals;
  const std::vector<std::string> hostile{"\0x"s, "\x1b[2J"s, "\r"s, "\nforged line"s};
  for (const auto& bad : hostile) {
    for (const char* field : {"host", "name", "account"}) {
      auto args = add_args("ok");
      args[field] = args[field].get<std::string>() + bad;
      auto err = add_error(args);
      ASSERT_TRUE(err) << field << " with a control character was accepted";
      EXPECT_EQ(code_of(err), ec::invalid_argument) << describe(err);
      EXPECT_EQ(describe(err).find('\x1b'), std::string::npos);
    }
  }
  auto c = connect();
  auto list = c.call("server.list", json::object());
  ASSERT_TRUE(list);
  EXPECT_TRUE((*list)["servers"].empty()) << list->dump();
}

TEST_F(control_input, a_host_must_be_a_hostname_or_an_ip_literal) {
  for (const char* bad : {"a b", "bad/host", "2130706433", "127.000.0.1", "fe80::1%eth0", "[h]"}) {
    auto args = add_args("x");
    args["host"] = bad;
    auto err = add_error(args);
    ASSERT_TRUE(err) << bad;
    EXPECT_EQ(exit_code_for(err), exit_usage) << describe(err);
  }
}

TEST_F(control_input, duplicates_are_found_on_the_normalised_address) {
  auto first = add_args("v6");
  first["host"] = "::1";
  EXPECT_FALSE(add_error(first));
  for (const char* same : {"[::1]", "0:0:0:0:0:0:0:1", "0::1"}) {
    auto again = add_args("v6 again");
    again["host"] = same;
    auto err = add_error(again);
    ASSERT_TRUE(err) << same << " was added next to ::1";
    EXPECT_EQ(code_of(err), ec::already_exists) << describe(err);
  }
  auto named = add_args("name");
  named["host"] = "Localhost.";
  EXPECT_FALSE(add_error(named));
  named["host"] = "localhost";
  EXPECT_EQ(code_of(add_error(named)), ec::already_exists);
  auto c = connect();
  auto list = c.call("server.list", json::object());
  ASSERT_TRUE(list);
  ASSERT_EQ((*list)["servers"].size(), 2u);
  std::vector<std::string> addresses;
  for (const auto& s : (*list)["servers"]) addresses.push_back(s["address"]);
  std::sort(addresses.begin(), addresses.end());
  EXPECT_EQ(addresses, (std::vector<std::string>{"[::1]:" + std::to_string(dead_.port()),
                                                 "localhost:" + std::to_string(dead_.port())}));
}

TEST_F(control_input, new_credentials_with_a_control_character_in_the_account_are_refused) {
  auto c = connect();
  auto added = c.call("server.add", add_args("creds"));
  ASSERT_TRUE(added) << describe(added.error());
  auto r = c.call("server.credentials",
                  {{"id", (*added)["id"]}, {"account", "admin\r\nforged"}, {"password", "pw"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(code_of(r.error()), ec::invalid_argument);
}

}  // namespace
}  // namespace certfleet::control
