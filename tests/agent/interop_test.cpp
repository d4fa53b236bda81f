// Interop with an independent TLS stack: the openssl command-line client against a real fleet
// endpoint (`certfleet-agent fleet` as a child process).
#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "tests/agent/test_support.hpp"

namespace certfleet {
namespace {

using namespace certfleet::testing;

class openssl_interop : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pw = "interop-pw\n";
    ASSERT_FALSE(write_file_atomically(dir_.path() / "pw", pw.data(), pw.size(), 0600));
    agent_ = std::make_unique<child_process>(std::vector<std::string>{
        agent_binary(), "--state-dir", (dir_.path() / "state").string(), "--log-level", "warn",
        "fleet", "--count", "2", "--admin-password-file", (dir_.path() / "pw").string()});
    ASSERT_TRUE(agent_->wait_for_line("endpoints listening", 30s));
    auto doc = nlohmann::json::parse(read_text(dir_.path() / "state" / "manifest.json"));
    port_ = doc["endpoints"][1]["port"].get<uint16_t>();
    thumbprint_ = doc["endpoints"][1]["thumbprint"].get<std::string>();
    // An ECDSA P-256 client certificate the agent has never seen.
    auto req = run_command("cd " + dir_.path().string() +
                           " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                           "-nodes -keyout k.pem -out c.pem -days 1 -subj /CN=interop");
    ASSERT_EQ(req.exit_code, 0) << req.output;
  }

  command_result s_client(const std::string& options) {
    return run_command("cd " + dir_.path().string() +
                       " && echo | timeout 20 openssl s_client -connect 127.0.0.1:" +
                       std::to_string(port_) + " " + options);
  }

  temp_dir dir_;
  std::unique_ptr<child_process> agent_;
  uint16_t port_ = 0;
  std::string thumbprint_;
};

TEST_F(openssl_interop, tls_1_2_completes_a_handshake_and_shows_the_manifest_fingerprint) {
  auto r = s_client(
      "-cert c.pem -key k.pem -tls1_2 > s_client.txt 2>&1; openssl x509 -noout "
      "-fingerprint -sha256 -in s_client.txt; grep -E 'Protocol|Cipher is' "
      "s_client.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto pos = r.output.find("Fingerprint=");
  ASSERT_NE(pos, std::string::npos) << r.output;
  auto fp = r.output.substr(pos + 12, 95);
  fp.erase(std::remove(fp.begin(), fp.end(), ':'), fp.end());
  EXPECT_EQ(fp, thumbprint_);
  EXPECT_NE(r.output.find("TLSv1.2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ECDHE-ECDSA-"), std::string::npos) << r.output;
}

TEST_F(openssl_interop, tls_1_1_is_refused_with_a_protocol_version_alert) {
  // SECLEVEL=0 lets OpenSSL 3 actually offer TLS 1.1, so the refusal is the agent's.
  auto r = s_client("-cert c.pem -key k.pem -tls1_1 -cipher DEFAULT@SECLEVEL=0");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("alert protocol version"), std::string::npos) << r.output;
}

TEST_F(openssl_interop, a_client_without_a_certificate_is_refused) {
  auto r = s_client("-tls1_2");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("alert handshake failure"), std::string::npos) << r.output;
}

TEST_F(openssl_interop, suites_without_aead_are_refused_and_an_aead_suite_is_accepted) {
  // CBC suites with HMAC-SHA256, HMAC-SHA1 and HMAC-SHA384: the policy allows only AEAD ciphers
  // (docs/protocol.md, "TLS"), so no suite is shared and the agent refuses the handshake.
  for (const char* suite :
       {"ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"}) {
    SCOPED_TRACE(suite);
    auto r = s_client(std::string("-cert c.pem -key k.pem -tls1_2 -cipher ") + suite);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("alert handshake failure"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("Cipher is (NONE)"), std::string::npos) << r.output;
  }
  auto r = s_client("-cert c.pem -key k.pem -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"), std::string::npos)
      << r.output;
}

TEST_F(openssl_interop, a_renegotiation_asked_by_the_client_is_refused_and_ends_the_connection) {
  // "R" on s_client's stdin sends a new ClientHello on the established connection; the agent
  // answers with a no_renegotiation alert and no second handshake takes place.
  auto r = run_command("cd " + dir_.path().string() +
                       " && (sleep 1; echo R; sleep 3) | timeout 20 openssl s_client "
                       "-connect 127.0.0.1:" +
                       std::to_string(port_) + " -cert c.pem -key k.pem -tls1_2 2>&1");
  EXPECT_NE(r.exit_code, 0) << r.output;
  auto first = r.output.find("New, TLSv1.2, Cipher is ECDHE-ECDSA-");
  ASSERT_NE(first, std::string::npos) << "the first handshake completes: " << r.output;
  auto reneg = r.output.find("RENEGOTIATING", first);
  ASSERT_NE(reneg, std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no renegotiation", reneg), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("New, TLSv1.2", reneg), std::string::npos)
      << "a second handshake completed: " << r.output;
}

}  // namespace
}  // namespace certfleet
