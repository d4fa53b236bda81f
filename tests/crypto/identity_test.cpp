#include "crypto/identity.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "tests/crypto/test_support.hpp"

namespace certfleet {
namespace {

using certfleet::testing::run_command;
using certfleet::testing::temp_dir;
using certfleet::testing::write_text_file;

const identity_subject acme{"backup-07.example.net", "Acme Backup Ltd"};

// Keeps only hex digits, uppercased, so "sha256 Fingerprint=AB:cd:..." compares with to_string().
std::string hex_only(const std::string& s) {
  std::string out;
  for (char c : s)
    if (std::isxdigit(static_cast<unsigned char>(c)))
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string fingerprint_from_openssl(const std::string& cert_file, const char* digest) {
  auto r =
      run_command(std::string{"openssl x509 -noout -fingerprint -"} + digest + " -in " + cert_file);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto eq = r.output.find('=');
  return eq == std::string::npos ? std::string{} : hex_only(r.output.substr(eq + 1));
}

class identity_with_openssl : public ::testing::Test {
 protected:
  // Generating a P-256 key and certificate takes about a millisecond here; one per test is fine.
  void SetUp() override {
    auto id = identity::generate(acme, std::chrono::hours{24 * 90}, "backup-07");
    ASSERT_TRUE(id) << describe(id.error());
    id_.emplace(std::move(*id));
    cert_file_ = (dir_.path() / "cert.pem").string();
    write_text_file(cert_file_, id_->certificate_pem());
  }

  std::string openssl_text() {
    auto r = run_command("openssl x509 -noout -text -in " + cert_file_);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  }

  temp_dir dir_;
  std::optional<identity> id_;
  std::string cert_file_;
};

TEST_F(identity_with_openssl, thumbprints_equal_the_openssl_fingerprints) {
  EXPECT_EQ(id_->sha256().to_string(), fingerprint_from_openssl(cert_file_, "sha256"));
  EXPECT_EQ(id_->sha1().to_string(), fingerprint_from_openssl(cert_file_, "sha1"));
}

// OpenSSL 3.0 takes a certificate found in -CAfile as the trust anchor, so the chain is this one
// certificate, checked as a leaf: it needs neither CA:TRUE nor keyCertSign, and neither
// -partial_chain nor relaxed strictness is required (measured with 3.0.19: plain, -x509_strict and
// -partial_chain all accept it). By default, though, openssl does not check a trust anchor's own
// signature at all (a certificate with a corrupted signature still verifies "OK"), so
// -check_ss_sig is passed to make "self-signed" mean something; -x509_strict adds the RFC 5280
// profile checks. The second test shows -check_ss_sig does catch a bad signature.
TEST_F(identity_with_openssl, openssl_verify_accepts_it_as_self_signed) {
  auto r = run_command("openssl verify -x509_strict -check_ss_sig -CAfile " + cert_file_ + " " +
                       cert_file_);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(": OK"), std::string::npos) << r.output;

  for (const char* purpose : {"sslserver", "sslclient"}) {
    auto p = run_command(std::string{"openssl verify -check_ss_sig -purpose "} + purpose +
                         " -CAfile " + cert_file_ + " " + cert_file_);
    EXPECT_EQ(p.exit_code, 0) << purpose << ": " << p.output;
  }
}

TEST_F(identity_with_openssl, openssl_verify_with_check_ss_sig_rejects_a_corrupted_signature) {
  auto der = id_->certificate_der();
  der[der.size() - 3] ^= 0x01;  // inside the signature's s value
  auto der_file = (dir_.path() / "bad.der").string();
  auto bad_file = (dir_.path() / "bad.pem").string();
  write_text_file(der_file, std::string(der.begin(), der.end()));
  auto convert = run_command("openssl x509 -inform DER -in " + der_file + " -out " + bad_file);
  ASSERT_EQ(convert.exit_code, 0) << convert.output;
  auto r =
      run_command("openssl verify -x509_strict -check_ss_sig -CAfile " + bad_file + " " + bad_file);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("signature failure"), std::string::npos) << r.output;
}

TEST_F(identity_with_openssl, certificate_is_a_leaf_for_tls_server_and_client_authentication) {
  auto text = openssl_text();
  EXPECT_NE(text.find("CA:FALSE"), std::string::npos) << text;
  EXPECT_NE(text.find("Digital Signature"), std::string::npos) << text;
  EXPECT_EQ(text.find("Certificate Sign"), std::string::npos) << text;
  EXPECT_NE(text.find("TLS Web Server Authentication"), std::string::npos) << text;
  EXPECT_NE(text.find("TLS Web Client Authentication"), std::string::npos) << text;
  EXPECT_NE(text.find("Version: 3"), std::string::npos) << text;
  EXPECT_NE(text.find("ecdsa-with-SHA256"), std::string::npos) << text;
  EXPECT_NE(text.find("prime256v1"), std::string::npos) << text;
}

TEST_F(identity_with_openssl,
       subject_and_issuer_carry_the_configured_common_name_and_organization) {
  auto r = run_command("openssl x509 -noout -subject -issuer -nameopt RFC2253 -in " + cert_file_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("subject=O=Acme Backup Ltd,CN=backup-07.example.net"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("issuer=O=Acme Backup Ltd,CN=backup-07.example.net"), std::string::npos)
      << r.output;
}

TEST_F(identity_with_openssl, serial_is_128_bits_and_matches_the_summary) {
  auto r = run_command("openssl x509 -noout -serial -in " + cert_file_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto serial = hex_only(r.output.substr(r.output.find('=') + 1));
  EXPECT_EQ(serial, id_->summary().serial);
  ASSERT_EQ(serial.size(), 32u) << serial;  // 16 bytes
  EXPECT_GE(std::stoi(serial.substr(0, 1), nullptr, 16), 8) << "top bit set: exactly 128 bits";
}

TEST(identity, two_generated_identities_have_different_serials_and_thumbprints) {
  auto a = identity::generate(acme, std::chrono::hours{24}, "a");
  auto b = identity::generate(acme, std::chrono::hours{24}, "b");
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->summary().serial, b->summary().serial);
  EXPECT_NE(a->sha256(), b->sha256());
}

TEST(identity, validity_runs_from_now_for_the_requested_days_as_openssl_reports) {
  // 2026-03-01T12:00:00Z
  auto now = std::chrono::system_clock::from_time_t(1772366400);
  auto id = identity::generate(acme, std::chrono::hours{24 * 397}, "x", now);
  ASSERT_TRUE(id) << describe(id.error());
  EXPECT_EQ(id->not_before(), now);
  EXPECT_EQ(id->not_after(), now + std::chrono::hours{24 * 397});

  temp_dir dir;
  auto cert_file = (dir.path() / "cert.pem").string();
  write_text_file(cert_file, id->certificate_pem());
  auto r = run_command("openssl x509 -noout -startdate -enddate -in " + cert_file);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("notBefore=Mar  1 12:00:00 2026 GMT"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("notAfter=Apr  2 12:00:00 2027 GMT"), std::string::npos) << r.output;
}

TEST(identity, summary_fills_every_field_for_an_operator) {
  auto now = std::chrono::system_clock::from_time_t(1772366400);
  auto id = identity::generate(acme, std::chrono::hours{48}, "backup-07 (primary)", now);
  ASSERT_TRUE(id) << describe(id.error());
  auto s = id->summary();
  EXPECT_EQ(s.friendly_name, "backup-07 (primary)");
  EXPECT_EQ(s.subject, "CN=backup-07.example.net, O=Acme Backup Ltd");
  EXPECT_EQ(s.issuer, s.subject);
  // std::regex would be shorter, but GCC 12 reports a false maybe-uninitialized in it under ASan.
  EXPECT_EQ(s.serial.size(), 32u) << s.serial;
  EXPECT_EQ(hex_only(s.serial), s.serial) << "uppercase hex only";
  EXPECT_EQ(s.not_before, "2026-03-01T12:00:00Z");
  EXPECT_EQ(s.not_after, "2026-03-03T12:00:00Z");
  EXPECT_EQ(s.key_algorithm, "ECDSA P-256");
  EXPECT_EQ(s.sha256, id->sha256());
  EXPECT_EQ(s.sha1, id->sha1());
}

TEST(identity, pem_round_trip_keeps_the_certificate_and_key) {
  auto id = identity::generate(acme, std::chrono::hours{24}, "first");
  ASSERT_TRUE(id) << describe(id.error());
  auto again = identity::from_pem(id->private_key_pem(), id->certificate_pem(), "renamed");
  ASSERT_TRUE(again) << describe(again.error());
  EXPECT_EQ(again->sha256(), id->sha256());
  EXPECT_EQ(again->certificate_der(), id->certificate_der());
  EXPECT_EQ(again->friendly_name(), "renamed");
  EXPECT_EQ(again->summary().key_algorithm, "ECDSA P-256");
}

TEST(identity, private_key_pem_is_pkcs8_that_openssl_reads_and_matches_the_certificate) {
  auto id = identity::generate(acme, std::chrono::hours{24}, "x");
  ASSERT_TRUE(id);
  temp_dir dir;
  auto key_file = (dir.path() / "key.pem").string();
  auto cert_file = (dir.path() / "cert.pem").string();
  auto pem = id->private_key_pem();
  write_text_file(key_file, std::string(pem.begin(), pem.end()));
  write_text_file(cert_file, id->certificate_pem());
  EXPECT_NE(std::string(pem.begin(), pem.end()).find("-----BEGIN PRIVATE KEY-----"),
            std::string::npos);
  auto from_key = run_command("openssl pkey -pubout -in " + key_file);
  auto from_cert = run_command("openssl x509 -noout -pubkey -in " + cert_file);
  ASSERT_EQ(from_key.exit_code, 0) << from_key.output;
  ASSERT_EQ(from_cert.exit_code, 0) << from_cert.output;
  EXPECT_EQ(from_key.output, from_cert.output);
}

TEST(identity, from_pem_refuses_a_key_that_belongs_to_another_certificate) {
  auto a = identity::generate(acme, std::chrono::hours{24}, "a");
  auto b = identity::generate(acme, std::chrono::hours{24}, "b");
  ASSERT_TRUE(a && b);
  auto mixed = identity::from_pem(b->private_key_pem(), a->certificate_pem(), "mixed");
  ASSERT_FALSE(mixed);
  EXPECT_EQ(code_of(mixed.error()), ec::corrupt_data);
  EXPECT_NE(describe(mixed.error()).find("does not belong to the certificate"), std::string::npos)
      << describe(mixed.error());
}

TEST(identity, from_pem_reports_unreadable_pem_as_corrupt_data) {
  auto a = identity::generate(acme, std::chrono::hours{24}, "a");
  ASSERT_TRUE(a);
  auto bad_key = identity::from_pem(to_secret("not a key"), a->certificate_pem(), "x");
  ASSERT_FALSE(bad_key);
  EXPECT_EQ(code_of(bad_key.error()), ec::corrupt_data);
  EXPECT_NE(describe(bad_key.error()).find("private key"), std::string::npos);

  auto cert = a->certificate_pem();
  cert.resize(cert.size() / 2);
  auto bad_cert = identity::from_pem(a->private_key_pem(), cert, "x");
  ASSERT_FALSE(bad_cert);
  EXPECT_EQ(code_of(bad_cert.error()), ec::corrupt_data) << describe(bad_cert.error());
}

TEST(identity, generate_refuses_an_empty_common_name_or_non_positive_validity) {
  auto no_name = identity::generate({"", "Acme"}, std::chrono::hours{24}, "x");
  ASSERT_FALSE(no_name);
  EXPECT_EQ(code_of(no_name.error()), ec::invalid_argument);
  auto no_time = identity::generate(acme, std::chrono::hours{0}, "x");
  ASSERT_FALSE(no_time);
  EXPECT_EQ(code_of(no_time.error()), ec::invalid_argument);
}

TEST(identity, copies_share_the_same_certificate) {
  auto a = identity::generate(acme, std::chrono::hours{24}, "a");
  ASSERT_TRUE(a);
  identity copy = *a;
  EXPECT_EQ(copy.sha256(), a->sha256());
  EXPECT_EQ(&copy.internals(), &a->internals());
}

}  // namespace
}  // namespace certfleet
