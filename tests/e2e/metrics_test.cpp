// The Prometheus endpoint end to end: a real certfleetd with a small agent fleet, its /metrics
// checked by promtool, and a real Prometheus server scraping it and answering a query.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/dead_port.hpp"
#include "tests/support/fleet.hpp"

namespace certfleet::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* fleet_password = "fleet-secret-Mt44";

// A plain HTTP/1.0 GET to 127.0.0.1; the body, or "" when the request failed.
std::string http_get(uint16_t port, const std::string& target) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string request = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[8192];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) response.append(buf, n);
    }
  }
  ::close(fd);
  auto body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || response.find(" 200 ") == std::string::npos ||
      body == std::string::npos)
    return {};
  return response.substr(body + 4);
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

class metrics_endpoint : public ::testing::Test {
 protected:
  temp_dir dir{"certfleet-metrics"};
  std::unique_ptr<agent_fleet> fleet;
  std::unique_ptr<child> daemon, prometheus;
  uint16_t metrics_port = free_port();
  std::vector<std::pair<std::string, std::string>> endpoints;  // address, thumbprint

  std::filesystem::path state() const { return dir / "mgr"; }

  run_result cli(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv{binary("apps/certfleet"), "--config",
                                  (dir / "certfleet.toml").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, input);
  }

  void start(int servers) {
    fleet = std::make_unique<agent_fleet>(dir.path(), servers, fleet_password);
    for (const auto& e : fleet->endpoints()) endpoints.emplace_back(e.host_port(), e.thumbprint);

    auto r = run({binary("apps/certfleet"), "--state-dir", state().string(), "init"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::ofstream{dir / "certfleet.toml"}
        << "state_dir = \"" << state().string() << "\"\n"
        << "[daemon]\nbackoff_initial_ms = 100\nbackoff_max_ms = 500\ncollect_interval_s = 1\n"
        << "trust_policy = \"expected-only\"\n"
        << "[metrics]\nlisten = \"127.0.0.1:" << metrics_port << "\"\n";
    daemon = std::make_unique<child>(
        std::vector<std::string>{binary("apps/daemon/certfleetd"), "--config",
                                 (dir / "certfleet.toml").string()},
        dir / "daemon.log");
    ASSERT_TRUE(wait_until([&] { return cli({"status"}).exit_code == 0; }, 30s)) << daemon->log();
    for (auto& [address, thumbprint] : endpoints) {
      auto added = cli({"server", "add", address, "--account", "admin", "--password-stdin",
                        "--expect-thumbprint", thumbprint},
                       std::string{fleet_password} + "\n");
      ASSERT_EQ(added.exit_code, 0) << added.err;
      ASSERT_NE(added.out.find("s-"), std::string::npos) << added.out << added.err;
    }
  }

  // certfleet_servers{state="trusted"} as the daemon serves it, or -1.
  double served_trusted() {
    auto text = http_get(metrics_port, "/metrics");
    const std::string key = "certfleet_servers{state=\"trusted\"} ";
    auto at = text.find(key);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + key.size()));
  }
};

TEST_F(metrics_endpoint, serves_metrics_that_promtool_accepts) {
  start(3);
  ASSERT_TRUE(wait_until([&] { return served_trusted() == 3; }, 30s))
      << cli({"server", "list"}).out << cli({"status"}).out << daemon->log()
      << fleet->process().log();
  auto text = http_get(metrics_port, "/metrics");
  for (const char* name :
       {"certfleet_servers_connected", "certfleet_pending_registrations",
        "certfleet_handshakes_total", "certfleet_handshakes_failed_total",
        "certfleet_handshakes_resumed_total", "certfleet_collections_total",
        "certfleet_handshake_duration_seconds_bucket", "certfleet_collection_duration_seconds_sum",
        "certfleet_events_written_total", "certfleet_manager_certificate_expiry_timestamp_seconds",
        "certfleet_manager_certificate_renewal_due 0", "certfleet_credentials_retained 0",
        "certfleet_event_subscribers ", "certfleet_storage_write_duration_seconds_bucket",
        "certfleet_oldest_collection_age_seconds ", "certfleet_server_certificates_expiring 0",
        "certfleet_server_certificate_earliest_expiry_timestamp_seconds "})
    EXPECT_NE(text.find(name), std::string::npos) << name << " missing from\n" << text;

  // Collections run every second: the least recently collected server is a few seconds old.
  auto value_of = [&](const std::string& name) {
    auto at = text.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size() + 2));
  };
  EXPECT_GE(value_of("certfleet_oldest_collection_age_seconds"), 0.0) << text;
  EXPECT_LT(value_of("certfleet_oldest_collection_age_seconds"), 10.0) << text;
  EXPECT_GT(value_of("certfleet_storage_write_duration_seconds_count"), 0.0) << text;

  // A server nobody answers for keeps its credentials; a follower of the events subscribes.
  dead_port unreachable;
  auto added = cli({"server", "add", "127.0.0.1:" + std::to_string(unreachable.port()), "--account",
                    "admin", "--password-stdin", "--expect-thumbprint", endpoints[0].second},
                   std::string{fleet_password} + "\n");
  ASSERT_EQ(added.exit_code, 0) << added.err;
  child follower({binary("apps/certfleet"), "--config", (dir / "certfleet.toml").string(), "events",
                  "--follow"},
                 dir / "follower.log");
  EXPECT_TRUE(wait_until(
      [&] {
        text = http_get(metrics_port, "/metrics");
        return value_of("certfleet_credentials_retained") == 1 &&
               value_of("certfleet_event_subscribers") == 1;
      },
      30s))
      << text;
  follower.stop();

  // promtool reads the exposition format and lints the names (units, _total on counters).
  auto checked = run({"/usr/bin/promtool", "check", "metrics"}, text);
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err;
  EXPECT_EQ(checked.out + checked.err, "") << "promtool lint findings";
}

TEST_F(metrics_endpoint, a_real_prometheus_scrapes_the_fleet_state) {
  start(3);
  ASSERT_TRUE(wait_until([&] { return served_trusted() == 3; }, 30s)) << daemon->log();

  uint16_t web_port = free_port();
  std::ofstream{dir / "prometheus.yml"}
      << "global:\n  scrape_interval: 1s\n"
      << "scrape_configs:\n  - job_name: certfleet\n"
      << "    static_configs:\n      - targets: ['127.0.0.1:" << metrics_port << "']\n";
  prometheus = std::make_unique<child>(
      std::vector<std::string>{"/usr/bin/prometheus",
                               "--config.file=" + (dir / "prometheus.yml").string(),
                               "--storage.tsdb.path=" + (dir / "tsdb").string(),
                               "--web.listen-address=127.0.0.1:" + std::to_string(web_port)},
      dir / "prometheus.log");
  auto query = "/api/v1/query?query=" + url_encode("certfleet_servers{state=\"trusted\"}");
  std::string value;
  ASSERT_TRUE(wait_until(
      [&] {
        auto body = http_get(web_port, query);
        if (body.empty()) return false;
        auto answer = json::parse(body, nullptr, false);
        if (answer.is_discarded() || answer["status"] != "success") return false;
        auto& result = answer["data"]["result"];
        if (result.empty()) return false;
        value = result[0]["value"][1].get<std::string>();
        return result[0]["metric"]["job"] == "certfleet";
      },
      60s))
      << prometheus->log();
  EXPECT_EQ(value, "3");
}

TEST_F(metrics_endpoint, a_port_in_use_stops_the_daemon_with_the_address_named) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(metrics_port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  auto r = run({binary("apps/certfleet"), "--state-dir", state().string(), "init"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ofstream{dir / "certfleet.toml"} << "state_dir = \"" << state().string() << "\"\n"
                                        << "[metrics]\nlisten = \"127.0.0.1:" << metrics_port
                                        << "\"\n";
  auto d = run({binary("apps/daemon/certfleetd"), "--config", (dir / "certfleet.toml").string()});
  ::close(fd);
  EXPECT_NE(d.exit_code, 0);
  EXPECT_NE(d.err.find("127.0.0.1:" + std::to_string(metrics_port)), std::string::npos) << d.err;
  EXPECT_NE(d.err.find("metrics.listen"), std::string::npos) << d.err;
}

}  // namespace
}  // namespace certfleet::test
