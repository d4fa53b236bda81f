// How a session checks the certificate its peer presents (docs/protocol.md, "Certificate
// verification"): the pin first; then the key type for everyone; the self-signature only for a peer
// the owner accepted without a pin. Real TLS handshakes between the product's sessions, in memory.
// The odd certificates (a P-384 key, a broken self-signature) are made with Botan here because the
// product can only make good ones.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <botan/auto_rng.h>
#include <botan/ecdsa.h>
#include <botan/pem.h>
#include <botan/pkcs8.h>
#include <botan/x509self.h>

#include <gtest/gtest.h>

#include "protocol/tls_session.hpp"

namespace certfleet {
namespace {

using namespace std::chrono_literals;

identity good_identity(const std::string& cn) {
  auto id = identity::generate({cn, "Acme Backup Ltd"}, std::chrono::hours{24 * 90}, cn);
  EXPECT_TRUE(id) << describe(id.error());
  return std::move(*id);
}

// A self-signed ECDSA certificate on `curve`; with `break_signature`, the last byte of its
// signature is changed, so the certificate still parses and still matches its key, but its
// self-signature no longer verifies.
identity odd_identity(const std::string& cn, const std::string& curve, bool break_signature) {
  Botan::AutoSeeded_RNG rng;
  Botan::ECDSA_PrivateKey key(rng, Botan::EC_Group(curve));
  Botan::X509_Cert_Options opts(cn + "/DE/Acme Backup Ltd");
  opts.not_before("20200101000000Z");
  opts.not_after("20991231000000Z");
  auto cert = Botan::X509::create_self_signed_cert(opts, key, "SHA-256", rng);
  auto der = cert.BER_encode();
  if (break_signature) der.back() ^= 0x01;
  auto id = identity::from_pem(to_secret(Botan::PKCS8::PEM_encode(key)),
                               Botan::PEM_Code::encode(der, "CERTIFICATE"), cn);
  EXPECT_TRUE(id) << describe(id.error());
  return std::move(*id);
}

// One side of the connection as its owner sees it.
struct side {
  std::vector<uint8_t> outbox;
  std::vector<caf::error> errors;
  tls_outputs outputs() {
    tls_outputs o;
    o.ciphertext = [this](const uint8_t* d, size_t n) { outbox.insert(outbox.end(), d, d + n); };
    o.message = [](wire::message&&) {};
    return o;
  }
};

void deliver(side& from, tls_session& to, side& to_side) {
  if (from.outbox.empty()) return;
  auto bytes = std::move(from.outbox);
  from.outbox.clear();
  if (auto err = to.received(bytes.data(), bytes.size())) to_side.errors.push_back(err);
}

// A pin check in the new form: `pinned` for exactly `expected`, refused otherwise.
pin_check pinned_to(const thumbprint& expected, int* calls = nullptr) {
  return [expected, calls](const thumbprint& presented) -> pin_check::verdict {
    if (calls) ++*calls;
    if (presented == expected) return peer_trust::pinned;
    return make_error(ec::permission_denied,
                      "presented " + presented.to_string() + ", pinned " + expected.to_string());
  };
}

// A pin check in the old form (an error or nothing): accepts anything, as unpinned.
pin_check accept_any_unpinned() {
  return [](const thumbprint&) -> caf::error { return {}; };
}

// Handshakes `manager` (client) with `server` (agent), each side with its pin check.
struct handshake {
  side c, s;
  std::unique_ptr<tls_client_session> client;
  std::unique_ptr<tls_server_session> server;

  handshake(const identity& manager, pin_check client_check, const identity& agent,
            pin_check server_check) {
    client = std::make_unique<tls_client_session>(manager, std::move(client_check),
                                                  std::make_shared<tls_session_cache>(16),
                                                  "backup-07.example.net", 9401, c.outputs());
    server = std::make_unique<tls_server_session>(
        agent, std::move(server_check), std::make_shared<tls_session_cache>(16), s.outputs());
    for (int round = 0; round < 32 && (!c.outbox.empty() || !s.outbox.empty()); ++round) {
      deliver(c, *server, s);
      deliver(s, *client, c);
    }
  }
  std::string client_error() const { return c.errors.empty() ? "" : describe(c.errors.front()); }
  std::string server_error() const { return s.errors.empty() ? "" : describe(s.errors.front()); }
};

TEST(certificate_verification, a_pinned_peer_is_accepted_on_its_pin_alone) {
  auto manager = good_identity("manager-eu-1");
  auto agent = good_identity("backup-07.example.net");
  int client_calls = 0;
  int server_calls = 0;
  handshake h(manager, pinned_to(agent.sha256(), &client_calls), agent,
              pinned_to(manager.sha256(), &server_calls));
  ASSERT_TRUE(h.client->is_active()) << h.client_error();
  ASSERT_TRUE(h.server->is_active()) << h.server_error();
  EXPECT_EQ(client_calls, 1);
  EXPECT_EQ(server_calls, 1);
}

TEST(certificate_verification, a_pinned_certificate_is_not_checked_for_its_self_signature) {
  // The pin covers the certificate's exact bytes, signature included, and the handshake proves the
  // peer holds its key: a broken self-signature changes nothing the pin has not already fixed.
  auto manager = good_identity("manager-eu-1");
  auto agent = odd_identity("backup-07.example.net", "secp256r1", /*break_signature=*/true);
  handshake h(manager, pinned_to(agent.sha256()), agent, pinned_to(manager.sha256()));
  EXPECT_TRUE(h.client->is_active()) << h.client_error();
  EXPECT_TRUE(h.server->is_active()) << h.server_error();
}

TEST(certificate_verification, an_unpinned_certificate_must_be_validly_self_signed) {
  auto manager = odd_identity("manager-eu-1", "secp256r1", /*break_signature=*/true);
  auto agent = good_identity("backup-07.example.net");
  handshake h(manager, pinned_to(agent.sha256()), agent, accept_any_unpinned());
  EXPECT_FALSE(h.server->is_active());
  EXPECT_FALSE(h.client->is_active());
  EXPECT_NE(h.server_error().find("is not validly self-signed by its own key"), std::string::npos)
      << h.server_error();
  EXPECT_EQ(h.server->peer_thumbprint(), manager.sha256());
  EXPECT_NE(h.client_error().find("bad_certificate"), std::string::npos) << h.client_error();
}

TEST(certificate_verification, an_unpinned_validly_self_signed_certificate_is_accepted) {
  auto manager = good_identity("manager-eu-1");
  auto agent = good_identity("backup-07.example.net");
  handshake h(manager, pinned_to(agent.sha256()), agent, accept_any_unpinned());
  EXPECT_TRUE(h.client->is_active()) << h.client_error();
  EXPECT_TRUE(h.server->is_active()) << h.server_error();
}

TEST(certificate_verification, a_pin_mismatch_is_refused_and_names_both_thumbprints) {
  auto manager = good_identity("manager-eu-1");
  auto agent = good_identity("backup-07.example.net");
  auto someone_else = good_identity("someone-else").sha256();
  handshake h(manager, pinned_to(someone_else), agent, pinned_to(manager.sha256()));
  EXPECT_FALSE(h.client->is_active());
  EXPECT_FALSE(h.server->is_active());
  auto text = h.client_error();
  EXPECT_NE(text.find("presented " + agent.sha256().to_string()), std::string::npos) << text;
  EXPECT_NE(text.find("pinned " + someone_else.to_string()), std::string::npos) << text;
  EXPECT_EQ(code_of(h.client->pin_rejection()), ec::permission_denied);
  EXPECT_NE(h.server_error().find("bad_certificate"), std::string::npos) << h.server_error();
}

TEST(certificate_verification, a_pinned_certificate_with_a_p384_key_is_refused) {
  auto manager = good_identity("manager-eu-1");
  auto agent = odd_identity("backup-07.example.net", "secp384r1", /*break_signature=*/false);
  handshake h(manager, pinned_to(agent.sha256()), agent, pinned_to(manager.sha256()));
  EXPECT_FALSE(h.client->is_active());
  EXPECT_FALSE(h.server->is_active());
  EXPECT_NE(h.client_error().find("ECDSA secp384r1 key; certfleet requires ECDSA P-256"),
            std::string::npos)
      << h.client_error();
  EXPECT_EQ(h.client->peer_thumbprint(), agent.sha256());
}

TEST(certificate_verification, a_client_certificate_with_a_p384_key_is_refused_by_the_agent_side) {
  auto manager = odd_identity("manager-eu-1", "secp384r1", /*break_signature=*/false);
  auto agent = good_identity("backup-07.example.net");
  handshake h(manager, pinned_to(agent.sha256()), agent, accept_any_unpinned());
  EXPECT_FALSE(h.server->is_active());
  EXPECT_NE(h.server_error().find("certfleet requires ECDSA P-256"), std::string::npos)
      << h.server_error();
}

}  // namespace
}  // namespace certfleet
