// `certfleet-agent run` as a real process, changed from outside by the real CLI while it runs:
// accounts, certificate regeneration, managers list and revoke.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/agent/test_support.hpp"

namespace certfleet {
namespace {

using namespace certfleet::testing;

class single_agent_process : public ::testing::Test {
 protected:
  void SetUp() override {
    state_ = (dir_.path() / "state").string();
    auto add = cli("accounts add alice --role administrator --password-stdin", "alice-pw\n");
    ASSERT_EQ(add.exit_code, 0) << add.output;
    agent_ = std::make_unique<child_process>(std::vector<std::string>{
        agent_binary(), "--state-dir", state_, "--log-level", "warn", "run", "--port", "0"});
    std::optional<std::string> line;
    while ((line = agent_->read_line(30s)) && line->find("Listening on 127.0.0.1:") != 0) {
    }
    ASSERT_TRUE(line) << "the agent did not start";
    port_ = static_cast<uint16_t>(
        std::stoi(line->substr(std::string("Listening on 127.0.0.1:").size())));
  }

  command_result cli(const std::string& args, const std::string& input = "") {
    std::string cmd = agent_binary() + " --state-dir " + state_ + " " + args;
    if (!input.empty()) cmd = "printf '%s' '" + input + "' | " + cmd;
    return run_command(cmd);
  }

  std::string presented_thumbprint() {
    test_client c(manager_, "127.0.0.1", port_);
    auto err = c.connect();
    EXPECT_FALSE(err) << describe(err);
    return err ? "" : c.server_thumbprint()->to_string();
  }

  temp_dir dir_;
  std::string state_;
  std::unique_ptr<child_process> agent_;
  uint16_t port_ = 0;
  identity manager_ = make_identity("run test manager");
};

TEST_F(single_agent_process, registers_lists_and_revokes_a_manager_while_running) {
  {
    test_client c(manager_, "127.0.0.1", port_);
    ASSERT_FALSE(c.connect());
    ASSERT_FALSE(c.send(wire::hello{2, 2, "m"}));
    ASSERT_FALSE(
        c.send(wire::register_request{"alice", to_secret("alice-pw"), manager_.sha256(), "m"}));
    ASSERT_TRUE(c.receive());
    auto answer = c.receive();
    ASSERT_TRUE(answer && std::holds_alternative<wire::registered>(*answer));
  }
  auto list = cli("managers list");
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find(manager_.sha256().to_string()), std::string::npos) << list.output;

  auto revoke = cli("managers revoke " + manager_.sha256().to_colon_string());
  EXPECT_EQ(revoke.exit_code, 0) << revoke.output;
  EXPECT_NE(revoke.output.find("running agent"), std::string::npos) << revoke.output;
  test_client c(manager_, "127.0.0.1", port_);
  ASSERT_FALSE(c.connect());
  ASSERT_FALSE(c.send(wire::hello{2, 2, "m"}));
  ASSERT_FALSE(c.send(wire::collect{}));
  auto refusal = c.receive();
  ASSERT_TRUE(refusal) << describe(refusal.error());
  ASSERT_TRUE(std::holds_alternative<wire::denied>(*refusal));
  EXPECT_EQ(std::get<wire::denied>(*refusal).reason, wire::denial_reason::not_registered);
  EXPECT_TRUE(c.closed_without_message());
  EXPECT_EQ(cli("managers list").output.find(manager_.sha256().to_string()), std::string::npos);
}

TEST_F(single_agent_process, managers_show_prints_the_stored_certificate_that_openssl_reads) {
  {
    test_client c(manager_, "127.0.0.1", port_);
    ASSERT_FALSE(c.connect());
    ASSERT_FALSE(c.send(wire::hello{2, 2, "m"}));
    ASSERT_FALSE(
        c.send(wire::register_request{"alice", to_secret("alice-pw"), manager_.sha256(), "m"}));
    ASSERT_TRUE(c.receive());
    auto answer = c.receive();
    ASSERT_TRUE(answer && std::holds_alternative<wire::registered>(*answer));
  }
  auto thumb = manager_.sha256().to_string();
  auto shown = cli("managers show " + thumb);
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_NE(shown.output.find(thumb), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("-----BEGIN CERTIFICATE-----"), std::string::npos) << shown.output;

  // An independent tool reads the PEM and finds the manager's own fingerprint.
  auto fp = run_command(agent_binary() + " --state-dir " + state_ + " managers show " + thumb +
                        " | openssl x509 -noout -fingerprint -sha256");
  ASSERT_EQ(fp.exit_code, 0) << fp.output;
  EXPECT_NE(fp.output.find("=" + manager_.sha256().to_colon_string()), std::string::npos)
      << fp.output << " vs " << manager_.sha256().to_colon_string();

  auto json = nlohmann::json::parse(cli("managers show " + thumb + " --json").output);
  EXPECT_EQ(json["sha256"].get<std::string>(), thumb);
  EXPECT_EQ(json["pem"].get<std::string>(), manager_.certificate_pem());

  auto unknown = cli("managers show " + make_identity("nobody").sha256().to_string());
  EXPECT_EQ(unknown.exit_code, 3) << unknown.output;
}

TEST_F(single_agent_process, cert_regenerate_is_presented_from_the_next_connection_on) {
  auto before = presented_thumbprint();
  auto shown = nlohmann::json::parse(cli("cert show --json").output);
  EXPECT_EQ(shown["sha256"].get<std::string>(), before);

  auto regen = cli("cert regenerate");
  ASSERT_EQ(regen.exit_code, 0) << regen.output;
  auto after = presented_thumbprint();
  EXPECT_NE(after, before);
  EXPECT_EQ(nlohmann::json::parse(cli("cert show --json").output)["sha256"].get<std::string>(),
            after);
}

TEST_F(single_agent_process, accounts_are_listed_and_removed_and_the_file_stays_private) {
  auto add =
      cli("accounts add victor --role viewer --password-stdin --hash-profile simulation", "v-pw\n");
  ASSERT_EQ(add.exit_code, 0) << add.output;
  auto list = cli("accounts list");
  EXPECT_NE(list.output.find("alice  Backup Administrator"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("victor  Backup Viewer"), std::string::npos) << list.output;
  EXPECT_EQ(cli("accounts remove victor").exit_code, 0);
  EXPECT_EQ(cli("accounts list").output.find("victor"), std::string::npos);
  EXPECT_EQ(cli("accounts remove victor").exit_code, 3);
  auto text = read_text(dir_.path() / "state" / "accounts.json");
  EXPECT_EQ(text.find("alice-pw"), std::string::npos) << "no plaintext password on disk";
  ASSERT_EQ(::chmod((dir_.path() / "state" / "accounts.json").c_str(), 0644), 0);
  auto refused = cli("accounts list");
  EXPECT_EQ(refused.exit_code, 4) << refused.output;
}

}  // namespace
}  // namespace certfleet
