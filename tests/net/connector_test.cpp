#include "net/connector.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <vector>

#include <gtest/gtest.h>

namespace certfleet {
namespace {

using namespace std::chrono_literals;

struct outcome {
  int fd;
  caf::error err;
};

/// A listening socket on 127.0.0.1 with an ephemeral port; never accepts.
struct listener {
  int fd = -1;
  uint16_t port = 0;
  explicit listener(int backlog) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(fd, backlog);
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  ~listener() { ::close(fd); }
};

std::future<outcome> start(connector& c, uint16_t port, std::chrono::milliseconds deadline) {
  auto promise = std::make_shared<std::promise<outcome>>();
  auto result = promise->get_future();
  c.connect("127.0.0.1", port, deadline, [promise](int fd, const caf::error& err) {
    promise->set_value({fd, err});
  });
  return result;
}

TEST(connector, completed_connect_hands_over_an_open_socket) {
  listener l{16};
  connector c;
  auto r = start(c, l.port, 2s).get();
  ASSERT_GE(r.fd, 0) << describe(r.err);
  EXPECT_FALSE(r.err);
  ::close(r.fd);
}

TEST(connector, refused_connect_reports_the_address_and_cause) {
  uint16_t dead_port;
  {
    listener l{1};
    dead_port = l.port;
  }
  connector c;
  auto r = start(c, dead_port, 2s).get();
  EXPECT_EQ(r.fd, -1);
  EXPECT_NE(describe(r.err).find("127.0.0.1:" + std::to_string(dead_port)), std::string::npos);
  EXPECT_NE(describe(r.err).find("refused"), std::string::npos) << describe(r.err);
}

TEST(connector, connect_that_never_completes_times_out_without_blocking_others) {
  // A listener that never accepts and whose backlog is full drops further SYNs, so a connect to it
  // hangs: a stand-in for a black-holed address that stays on loopback.
  listener full{0};
  connector c;
  std::vector<std::future<outcome>> fillers;
  for (int i = 0; i < 4; ++i) fillers.push_back(start(c, full.port, 300ms));
  listener healthy{16};
  auto ok = start(c, healthy.port, 5s);
  ASSERT_EQ(ok.wait_for(2s), std::future_status::ready);
  auto good = ok.get();
  ASSERT_GE(good.fd, 0) << describe(good.err);
  ::close(good.fd);
  int timed_out = 0;
  for (auto& f : fillers) {
    auto r = f.get();
    if (r.fd >= 0) {
      ::close(r.fd);
    } else {
      EXPECT_NE(describe(r.err).find("timed out"), std::string::npos) << describe(r.err);
      ++timed_out;
    }
  }
  EXPECT_GE(timed_out, 1);
}

TEST(connector, destruction_abandons_pending_connects_with_a_reason) {
  listener full{0};
  std::vector<std::future<outcome>> results;
  {
    connector c;
    for (int i = 0; i < 4; ++i) results.push_back(start(c, full.port, 60s));
  }
  for (auto& f : results) {
    auto r = f.get();
    if (r.fd >= 0)
      ::close(r.fd);
    else
      EXPECT_NE(describe(r.err).find("shutting down"), std::string::npos) << describe(r.err);
  }
}

}  // namespace
}  // namespace certfleet
