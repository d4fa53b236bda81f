// Fleet mode end to end: `certfleet-agent fleet --count 1000` as a real child process, its
// manifest, and every fault switched through the real `certfleet-agent fault` command.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "tests/agent/test_support.hpp"

namespace certfleet {
namespace {

using namespace certfleet::testing;

constexpr size_t fleet_size = 1000;
constexpr auto client_deadline = 3000ms;

struct manifest_entry {
  std::string address;
  uint16_t port = 0;
  std::string thumbprint;
  std::string admin_account;
};

std::vector<manifest_entry> read_manifest(const std::filesystem::path& p) {
  auto doc = nlohmann::json::parse(read_text(p));
  std::vector<manifest_entry> out;
  for (const auto& e : doc["endpoints"])
    out.push_back({e["address"].get<std::string>(), e["port"].get<uint16_t>(),
                   e["thumbprint"].get<std::string>(), e["admin_account"].get<std::string>()});
  return out;
}

void write_password_file(const std::filesystem::path& p, const std::string& pw) {
  auto text = pw + "\n";
  ASSERT_FALSE(write_file_atomically(p, text.data(), text.size(), 0600));
}

class fleet_mode : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new temp_dir;
    write_password_file(dir_->path() / "admin.pw", "fleet-secret");
    auto state = (dir_->path() / "state").string();
    agent_ =
        new child_process({agent_binary(), "--state-dir", state, "--log-level", "warn", "fleet",
                           "--count", std::to_string(fleet_size), "--admin-password-file",
                           (dir_->path() / "admin.pw").string(), "--handshake-timeout-ms", "1000"});
    ready_ = agent_->wait_for_line("endpoints listening", 60s);
  }
  static void TearDownTestSuite() {
    delete agent_;
    delete dir_;
  }
  void SetUp() override { ASSERT_TRUE(ready_) << "the fleet did not start"; }

  static std::filesystem::path state() { return dir_->path() / "state"; }
  static std::vector<manifest_entry> manifest() { return read_manifest(state() / "manifest.json"); }

  static void fault(size_t ep, const std::string& what) {
    auto r = run_command(agent_binary() + " --state-dir " + state().string() +
                         " fault --endpoint " + std::to_string(ep) + " " + what);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // Connects to endpoint `ep` and completes the handshake; the error when it fails.
  caf::error handshake(size_t ep, std::string* presented = nullptr,
                       milliseconds deadline = client_deadline) {
    auto m = manifest().at(ep);
    test_client c(manager_, m.address, m.port);
    auto err = c.connect(deadline);
    if (!err && presented) *presented = c.server_thumbprint()->to_string();
    return err;
  }

  wire::message register_with(size_t ep) {
    auto m = manifest().at(ep);
    test_client c(manager_, m.address, m.port);
    auto err = c.connect(client_deadline);
    EXPECT_FALSE(err) << describe(err);
    if (err) return wire::error_message{};
    EXPECT_FALSE(c.send(wire::hello{2, 2, "fleet test"}));
    EXPECT_FALSE(c.send(wire::register_request{m.admin_account, to_secret("fleet-secret"),
                                               manager_.sha256(), "fleet test"}));
    auto hello = c.receive();
    EXPECT_TRUE(hello && std::holds_alternative<wire::hello>(*hello));
    auto answer = c.receive();
    EXPECT_TRUE(answer);
    return answer ? *answer : wire::message{wire::error_message{}};
  }

  static temp_dir* dir_;
  static child_process* agent_;
  static bool ready_;
  identity manager_ = make_identity("fleet test manager");
};

temp_dir* fleet_mode::dir_ = nullptr;
child_process* fleet_mode::agent_ = nullptr;
bool fleet_mode::ready_ = false;

TEST_F(fleet_mode, a_fleet_of_1000_writes_its_manifest_and_serves_handshakes_on_sampled_endpoints) {
  auto m = manifest();
  ASSERT_EQ(m.size(), fleet_size);
  std::set<uint16_t> ports;
  std::set<std::string> thumbs;
  for (const auto& e : m) {
    ports.insert(e.port);
    thumbs.insert(e.thumbprint);
    EXPECT_EQ(e.admin_account, "admin");
  }
  EXPECT_EQ(ports.size(), fleet_size);
  EXPECT_EQ(thumbs.size(), fleet_size) << "every endpoint has its own identity";
  for (size_t ep : {size_t{0}, size_t{517}, fleet_size - 1}) {
    std::string presented;
    ASSERT_FALSE(handshake(ep, &presented)) << ep;
    EXPECT_EQ(presented, m[ep].thumbprint) << ep;
  }
  EXPECT_TRUE(std::holds_alternative<wire::registered>(register_with(733)));
}

TEST_F(fleet_mode, offline_refuses_connections_and_online_serves_again_on_the_same_port) {
  auto before = manifest().at(10);
  fault(10, "offline");
  int fd = tcp_connect(before.address, before.port, client_deadline);
  int err = errno;
  EXPECT_LT(fd, 0);
  EXPECT_EQ(err, ECONNREFUSED);
  if (fd >= 0) ::close(fd);
  fault(10, "online");
  std::string presented;
  ASSERT_FALSE(handshake(10, &presented));
  EXPECT_EQ(presented, before.thumbprint);
  EXPECT_EQ(manifest().at(10).port, before.port);
}

TEST_F(fleet_mode, regenerate_presents_a_new_thumbprint_in_the_handshake_and_the_manifest) {
  auto before = manifest().at(11).thumbprint;
  fault(11, "regenerate");
  auto after = manifest().at(11).thumbprint;
  EXPECT_NE(after, before);
  std::string presented;
  ASSERT_FALSE(handshake(11, &presented));
  EXPECT_EQ(presented, after);
}

TEST_F(fleet_mode, stall_accepts_tcp_but_no_handshake_completes_before_the_deadline) {
  fault(12, "stall");
  auto err = handshake(12, nullptr, 1500ms);
  EXPECT_EQ(code_of(err), ec::timeout) << describe(err);
  fault(12, "clear");
  EXPECT_FALSE(handshake(12));
}

TEST_F(fleet_mode, deny_registrations_answers_not_accepting_until_accepted_again) {
  fault(13, "deny-registrations");
  auto answer = register_with(13);
  auto* d = std::get_if<wire::denied>(&answer);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->reason, wire::denial_reason::not_accepting);
  fault(13, "accept-registrations");
  EXPECT_TRUE(std::holds_alternative<wire::registered>(register_with(13)));
}

TEST_F(fleet_mode, drop_after_closes_the_connection_after_that_many_bytes) {
  fault(14, "drop-after 100");
  auto err = handshake(14);
  EXPECT_TRUE(err);
  EXPECT_NE(code_of(err), ec::timeout) << describe(err);
  fault(14, "clear");
  EXPECT_FALSE(handshake(14));
}

TEST_F(fleet_mode, slow_handshake_delays_every_answer_by_the_given_time) {
  fault(15, "slow-handshake 300");
  auto started = steady::now();
  ASSERT_FALSE(handshake(15));
  // Two server flights (ServerHello..Done, then ChangeCipherSpec/Finished) each wait 300 ms.
  EXPECT_GE(steady::now() - started, 600ms);
  fault(15, "clear");
}

TEST_F(fleet_mode, a_fault_for_an_endpoint_that_does_not_exist_is_refused_with_a_reason) {
  auto r = run_command(agent_binary() + " --state-dir " + state().string() +
                       " fault --endpoint 5000 offline");
  EXPECT_EQ(r.exit_code, 8);
  EXPECT_NE(r.output.find("there is no endpoint 5000"), std::string::npos) << r.output;
}

TEST(fleet_limits, a_fleet_that_cannot_fit_the_descriptor_limit_is_refused_with_the_numbers) {
  temp_dir dir;
  write_password_file(dir.path() / "pw", "x");
  // `ulimit -n` in sh sets the soft and the hard limit; `timeout` bounds a wrongly started fleet.
  auto r =
      run_command("ulimit -n 4096 && timeout 30 " + agent_binary() + " --state-dir " +
                  (dir.path() / "state").string() + " fleet --count 10000 --admin-password-file " +
                  (dir.path() / "pw").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("10000 endpoints need about 10100 file descriptors; the limit is 4096"),
            std::string::npos)
      << r.output;
}

TEST(fleet_restart, a_restarted_fleet_reuses_its_identities_and_registered_managers) {
  temp_dir dir;
  write_password_file(dir.path() / "pw", "restart-pw");
  auto state = (dir.path() / "state").string();
  std::vector<std::string> argv = {
      agent_binary(), "--state-dir", state, "--log-level",           "warn",
      "fleet",        "--count",     "3",   "--admin-password-file", (dir.path() / "pw").string()};
  std::vector<manifest_entry> first;
  auto manager = make_identity("restart manager");
  {
    child_process agent(argv);
    ASSERT_TRUE(agent.wait_for_line("endpoints listening", 30s));
    first = read_manifest(dir.path() / "state" / "manifest.json");
    test_client c(manager, first[1].address, first[1].port);
    ASSERT_FALSE(c.connect(client_deadline));
    ASSERT_FALSE(c.send(wire::hello{2, 2, "m"}));
    ASSERT_FALSE(
        c.send(wire::register_request{"admin", to_secret("restart-pw"), manager.sha256(), "m"}));
    ASSERT_TRUE(c.receive());
    auto answer = c.receive();
    ASSERT_TRUE(answer && std::holds_alternative<wire::registered>(*answer));
    EXPECT_EQ(agent.stop(), 0);
  }
  child_process agent(argv);
  ASSERT_TRUE(agent.wait_for_line("endpoints listening", 30s));
  auto second = read_manifest(dir.path() / "state" / "manifest.json");
  ASSERT_EQ(second.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(second[i].thumbprint, first[i].thumbprint) << i;
  // The registration survived: the manager is trusted at once.
  test_client c(manager, second[1].address, second[1].port);
  ASSERT_FALSE(c.connect(client_deadline));
  ASSERT_FALSE(c.send(wire::hello{2, 2, "m"}));
  ASSERT_FALSE(c.send(wire::collect{}));
  ASSERT_TRUE(c.receive());
  auto inv = c.receive();
  ASSERT_TRUE(inv && std::holds_alternative<wire::inventory>(*inv));
  auto list = run_command(agent_binary() + " --state-dir " + state + " managers list --endpoint 1");
  EXPECT_NE(list.output.find(manager.sha256().to_string()), std::string::npos) << list.output;
}

}  // namespace
}  // namespace certfleet
