// A peer that sends more than one certificate (docs/protocol.md, "Certificate verification"): the
// pin applies to the leaf, the certificate whose key signs the handshake, and to nothing else in
// the chain. An unrelated certificate appended to a pinned leaf changes nothing; a pinned
// certificate sent behind a leaf that is not pinned does not make that leaf trusted. Real TLS
// handshakes in memory between one of the product's sessions and a plain Botan peer, which can
// send any chain.
#include <memory>
#include <string>
#include <vector>

#include <botan/auto_rng.h>
#include <botan/credentials_manager.h>
#include <botan/tls_client.h>
#include <botan/tls_server.h>
#include <botan/tls_session_manager.h>

#include <gtest/gtest.h>

#include "crypto/botan_identity.hpp"
#include "protocol/tls_policy.hpp"
#include "protocol/tls_session.hpp"

namespace certfleet {
namespace {

identity make(const std::string& cn) {
  auto id = identity::generate({cn, "Acme Backup Ltd"}, std::chrono::hours{24 * 90}, cn);
  EXPECT_TRUE(id) << describe(id.error());
  return std::move(*id);
}

pin_check pinned_to(const thumbprint& expected) {
  return [expected](const thumbprint& presented) -> pin_check::verdict {
    if (presented == expected) return peer_trust::pinned;
    return make_error(ec::permission_denied,
                      "presented " + presented.to_string() + ", pinned " + expected.to_string());
  };
}

// Sends `chain` (leaf first) with the leaf's key; accepts whatever the other side presents.
class chain_credentials final : public Botan::Credentials_Manager {
 public:
  chain_credentials(const identity& leaf, std::vector<Botan::X509_Certificate> chain)
      : key_(leaf.internals().key), chain_(std::move(chain)) {}

  std::vector<Botan::Certificate_Store*> trusted_certificate_authorities(
      const std::string&, const std::string&) override {
    return {};
  }
  std::vector<Botan::X509_Certificate> find_cert_chain(const std::vector<std::string>&,
                                                       const std::vector<Botan::X509_DN>&,
                                                       const std::string&,
                                                       const std::string&) override {
    return chain_;
  }
  Botan::Private_Key* private_key_for(const Botan::X509_Certificate&, const std::string&,
                                      const std::string&) override {
    return key_.get();
  }

 private:
  std::shared_ptr<Botan::Private_Key> key_;
  std::vector<Botan::X509_Certificate> chain_;
};

class plain_callbacks final : public Botan::TLS::Callbacks {
 public:
  std::vector<uint8_t> outbox;
  bool established = false;
  bool alerted = false;

  void tls_emit_data(const uint8_t data[], size_t size) override {
    outbox.insert(outbox.end(), data, data + size);
  }
  void tls_record_received(uint64_t, const uint8_t[], size_t) override {}
  void tls_alert(Botan::TLS::Alert) override { alerted = true; }
  bool tls_session_established(const Botan::TLS::Session&) override {
    established = true;
    return false;
  }
  void tls_verify_cert_chain(const std::vector<Botan::X509_Certificate>&,
                             const std::vector<std::shared_ptr<const Botan::OCSP::Response>>&,
                             const std::vector<Botan::Certificate_Store*>&, Botan::Usage_Type,
                             const std::string&, const Botan::TLS::Policy&) override {}
};

// Our side's errors, and whether the handshake completed on each side.
struct outcome {
  bool ours_active = false;
  bool theirs_established = false;
  std::vector<caf::error> errors;
  std::string error_text() const { return errors.empty() ? "" : describe(errors.front()); }
};

template <class Ours>
outcome exchange(Ours& ours, std::vector<uint8_t>& our_outbox, Botan::TLS::Channel& theirs,
                 plain_callbacks& cb, std::vector<caf::error>& errors) {
  for (int round = 0; round < 32 && (!our_outbox.empty() || !cb.outbox.empty()); ++round) {
    if (!cb.outbox.empty()) {
      auto bytes = std::move(cb.outbox);
      cb.outbox.clear();
      if (auto err = ours.received(bytes.data(), bytes.size())) errors.push_back(err);
    }
    if (!our_outbox.empty()) {
      auto bytes = std::move(our_outbox);
      our_outbox.clear();
      try {
        theirs.received_data(bytes.data(), bytes.size());
      } catch (const std::exception&) {
        // The plain peer gave up: what counts is what our side decided.
      }
    }
  }
  return {ours.is_active(), cb.established, errors};
}

tls_outputs outputs_into(std::vector<uint8_t>& outbox) {
  tls_outputs o;
  o.ciphertext = [&outbox](const uint8_t* d, size_t n) { outbox.insert(outbox.end(), d, d + n); };
  o.message = [](wire::message&&) {};
  return o;
}

// The manager (our client session, pinned to `pinned`) against a server sending `chain` with the
// key of `leaf`.
outcome manager_meets_server(const identity& leaf, std::vector<Botan::X509_Certificate> chain,
                             const thumbprint& pinned) {
  auto manager = make("manager-eu-1");
  std::vector<uint8_t> our_outbox;
  std::vector<caf::error> errors;
  plain_callbacks cb;
  Botan::AutoSeeded_RNG rng;
  Botan::TLS::Session_Manager_Noop sessions;
  chain_credentials creds(leaf, std::move(chain));
  tls_policy policy;
  Botan::TLS::Server server(cb, sessions, creds, policy, rng);
  tls_client_session client(manager, pinned_to(pinned), std::make_shared<tls_session_cache>(16),
                            "backup-07.example.net", 9401, outputs_into(our_outbox));
  return exchange(client, our_outbox, server, cb, errors);
}

// The agent (our server session, pinned to `pinned`) against a client sending `chain` with the key
// of `leaf`.
outcome agent_meets_client(const identity& leaf, std::vector<Botan::X509_Certificate> chain,
                           const thumbprint& pinned) {
  auto agent = make("backup-07.example.net");
  std::vector<uint8_t> our_outbox;
  std::vector<caf::error> errors;
  plain_callbacks cb;
  Botan::AutoSeeded_RNG rng;
  Botan::TLS::Session_Manager_Noop sessions;
  chain_credentials creds(leaf, std::move(chain));
  tls_policy policy;
  tls_server_session server(agent, pinned_to(pinned), std::make_shared<tls_session_cache>(16),
                            outputs_into(our_outbox));
  Botan::TLS::Client client(cb, sessions, creds, policy, rng,
                            Botan::TLS::Server_Information("backup-07.example.net", 9401),
                            Botan::TLS::Protocol_Version::TLS_V12);
  return exchange(server, our_outbox, client, cb, errors);
}

TEST(certificate_chain, a_pinned_server_leaf_with_an_unrelated_certificate_appended_is_accepted) {
  auto leaf = make("backup-07.example.net");
  auto extra = make("unrelated-ca");
  auto r = manager_meets_server(leaf, {leaf.internals().certificate, extra.internals().certificate},
                                leaf.sha256());
  EXPECT_TRUE(r.ours_active) << r.error_text();
  EXPECT_TRUE(r.theirs_established);
}

TEST(certificate_chain, a_pinned_certificate_behind_an_unpinned_server_leaf_is_refused) {
  auto pinned = make("backup-07.example.net");
  auto impostor = make("impostor");
  auto r = manager_meets_server(impostor,
                                {impostor.internals().certificate, pinned.internals().certificate},
                                pinned.sha256());
  EXPECT_FALSE(r.ours_active);
  EXPECT_FALSE(r.theirs_established);
  auto text = r.error_text();
  EXPECT_NE(text.find("presented " + impostor.sha256().to_string()), std::string::npos) << text;
}

TEST(certificate_chain, a_pinned_client_leaf_with_an_unrelated_certificate_appended_is_accepted) {
  auto manager = make("manager-eu-1");
  auto extra = make("unrelated-ca");
  auto r = agent_meets_client(
      manager, {manager.internals().certificate, extra.internals().certificate}, manager.sha256());
  EXPECT_TRUE(r.ours_active) << r.error_text();
  EXPECT_TRUE(r.theirs_established);
}

TEST(certificate_chain, a_pinned_certificate_behind_an_unpinned_client_leaf_is_refused) {
  auto manager = make("manager-eu-1");
  auto impostor = make("impostor");
  auto r = agent_meets_client(impostor,
                              {impostor.internals().certificate, manager.internals().certificate},
                              manager.sha256());
  EXPECT_FALSE(r.ours_active);
  EXPECT_FALSE(r.theirs_established);
  auto text = r.error_text();
  EXPECT_NE(text.find("presented " + impostor.sha256().to_string()), std::string::npos) << text;
}

}  // namespace
}  // namespace certfleet
