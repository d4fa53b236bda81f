// The JSON-lines server both control sockets run on: a real Unix socket in a temp directory.
#include "common/jsonl_server.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.hpp"

namespace certfleet::jsonl {
namespace {

using json = nlohmann::json;

class raw_client {
 public:
  explicit raw_client(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~raw_client() { ::close(fd_); }
  bool connected() const { return connected_; }
  void send(const std::string& s) {
    ASSERT_EQ(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }
  /// The next line as JSON; a null json on EOF.
  json line() {
    for (;;) {
      auto nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        auto text = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return json::parse(text);
      }
      char chunk[4096];
      auto n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return nullptr;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

class jsonl_server_test : public ::testing::Test {
 protected:
  std::unique_ptr<server> start(accept_fn on_accept, size_t max_line = default_max_line) {
    server_options opts;
    opts.socket_path = (dir_.path() / "test.sock").string();
    opts.max_line = max_line;
    auto srv = server::start(std::move(opts), std::move(on_accept));
    EXPECT_TRUE(srv) << describe(srv.error());
    return srv ? std::move(*srv) : nullptr;
  }
  std::string path() const { return (dir_.path() / "test.sock").string(); }

  static caf::expected<request_fn> echo(const peer_identity&) {
    return request_fn{[](connection& c, const json& id, json& req) {
      if (req.contains("fail")) return c.reply(id, make_error(ec::not_found, "no such thing"));
      return c.reply(id, json{{"echo", req}});
    }};
  }

  test::temp_dir dir_;
};

TEST_F(jsonl_server_test, replies_carry_the_request_id_and_errors_have_one_shape) {
  auto srv = start(echo);
  ASSERT_TRUE(srv);
  raw_client c{path()};
  ASSERT_TRUE(c.connected());
  c.send("{\"id\": 7, \"x\": 1}\n");
  auto ok = c.line();
  EXPECT_EQ(ok["id"], 7);
  EXPECT_EQ(ok["ok"], true);
  EXPECT_EQ(ok["result"]["echo"]["x"], 1);
  c.send("{\"id\": \"a\", \"fail\": true}\n");
  auto err = c.line();
  EXPECT_EQ(err["id"], "a");
  EXPECT_EQ(err["ok"], false);
  EXPECT_EQ(err["error"]["code"], "not_found");
  EXPECT_EQ(err["error"]["message"], "no such thing");
  EXPECT_EQ(err["error"]["exit_code"], 3);
}

TEST_F(jsonl_server_test, a_line_that_is_not_a_json_object_gets_an_error_and_the_next_is_served) {
  auto srv = start(echo);
  ASSERT_TRUE(srv);
  raw_client c{path()};
  c.send("nonsense\n[1]\n{\"id\":2}\n");
  auto first = c.line();
  EXPECT_TRUE(first["id"].is_null());
  EXPECT_EQ(first["error"]["code"], "invalid_argument");
  EXPECT_EQ(first["error"]["exit_code"], 2);
  EXPECT_EQ(c.line()["error"]["code"], "invalid_argument");
  EXPECT_EQ(c.line()["id"], 2);
}

TEST_F(jsonl_server_test, a_number_out_of_range_is_an_error_not_the_end_of_the_server) {
  auto srv = start(echo);
  ASSERT_TRUE(srv);
  raw_client c{path()};
  c.send("{\"op\":\"status\",\"args\":{\"n\":1e999}}\n{\"id\":3}\n");
  auto first = c.line();
  EXPECT_EQ(first["error"]["code"], "invalid_argument") << first.dump();
  EXPECT_EQ(c.line()["id"], 3);
}

TEST_F(jsonl_server_test, an_overlong_line_gets_frame_too_large_and_the_connection_closes) {
  auto srv = start(echo, 16);
  ASSERT_TRUE(srv);
  raw_client c{path()};
  c.send(std::string(64, 'x'));
  auto reply = c.line();
  EXPECT_EQ(reply["error"]["code"], "frame_too_large");
  EXPECT_TRUE(c.line().is_null());
}

TEST_F(jsonl_server_test, a_refused_peer_is_told_why_and_disconnected) {
  auto srv = start([](const peer_identity& peer) -> caf::expected<request_fn> {
    return make_error(ec::permission_denied, "uid " + std::to_string(peer.uid) + " refused");
  });
  ASSERT_TRUE(srv);
  raw_client c{path()};
  auto reply = c.line();
  EXPECT_EQ(reply["error"]["code"], "permission_denied");
  EXPECT_EQ(reply["error"]["message"], "uid " + std::to_string(::getuid()) + " refused");
  EXPECT_TRUE(c.line().is_null());
}

TEST_F(jsonl_server_test, a_second_server_on_a_live_socket_is_refused_and_a_stale_one_replaced) {
  auto srv = start(echo);
  ASSERT_TRUE(srv);
  server_options opts;
  opts.socket_path = path();
  opts.service = "tester";
  auto second = server::start(opts, echo);
  ASSERT_FALSE(second);
  EXPECT_EQ(code_of(second.error()), ec::already_exists);
  EXPECT_NE(describe(second.error()).find("another tester"), std::string::npos);
  srv.reset();
  // A socket file left behind by a process that died: bind one without listening.
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path().data(), path().size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  auto third = server::start(opts, echo);
  EXPECT_TRUE(third) << describe(third.error());
}

}  // namespace
}  // namespace certfleet::jsonl
