// The single-core handshake limit, two loops with the same `run_once()` interface, each doing one
// mutually authenticated TLS 1.2 handshake per call between two endpoints wired to each other in
// memory, with new channels each time. No sockets, no threads.
//
// `bare_handshake_loop` is Botan and nothing else: a `Botan::TLS::Client` and a
// `Botan::TLS::Server` with minimal callbacks, the same cipher suite and group as the product
// (certfleet's `tls_policy` is pure configuration), ECDSA P-256 identities, and a pin check only
// (SHA-256 of the peer's DER compared with the expected thumbprint). It is the ceiling a connect
// storm on one core could reach, so the storm's ratio to it measures the product's whole overhead.
//
// `in_memory_handshake_loop` (the product loop) uses the product's `tls_client_session` and
// `tls_server_session` with their session caches, certificate checks and framing, so the
// difference between the two loops is what the session layer adds.
//
// Full mode gives every handshake a server name the client cache has never seen, so the client
// offers no ticket, exactly as the manager does for a server it has not talked to since start.
// Resumed mode reuses one server name, so every handshake after the first offers the ticket kept in
// the client's session cache. Both caches are shared across handshakes as they are in the product.
//
// Ownership: owns both identities and both caches; build it outside static storage (Botan secure
// memory must outlive it, docs/platform.md).
// Thread-safety: none; one loop per thread.
// Failure: `create` fails when an identity cannot be generated; `run_once` returns the first error
// of either side, or `ec::invalid_state` when the sessions went quiet without both being active.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <botan/credentials_manager.h>
#include <botan/system_rng.h>
#include <botan/tls_callbacks.h>
#include <botan/tls_client.h>
#include <botan/tls_exceptn.h>
#include <botan/tls_server.h>
#include <botan/tls_session_manager.h>
#include <botan/x509cert.h>

#include "common/error.hpp"
#include "crypto/botan_identity.hpp"
#include "crypto/identity.hpp"
#include "protocol/tls_policy.hpp"
#include "protocol/tls_session.hpp"

namespace certfleet::bench {

/// The bare Botan handshake (see the file comment). Full mode: no session is remembered on either
/// side, so every handshake is a full one. Resumed mode: the client remembers its last session
/// (a plain copy) and the server issues session tickets (no server-side
/// storage), so every handshake after the first resumes.
class bare_handshake_loop {
 public:
  struct outcome {
    bool resumed = false;
  };

  static caf::expected<std::unique_ptr<bare_handshake_loop>> create(bool resume) {
    auto manager = identity::generate({"manager-bench", "Acme Backup Ltd"},
                                      std::chrono::hours{24 * 90}, "manager-bench");
    if (!manager) return manager.error();
    auto server = identity::generate({"backup-bench.example.net", "Acme Backup Ltd"},
                                     std::chrono::hours{24 * 90}, "backup-bench");
    if (!server) return server.error();
    return std::unique_ptr<bare_handshake_loop>(
        new bare_handshake_loop(std::move(*manager), std::move(*server), resume));
  }

  bare_handshake_loop(const bare_handshake_loop&) = delete;
  bare_handshake_loop& operator=(const bare_handshake_loop&) = delete;

  caf::expected<outcome> run_once() {
    end client_end{server_.sha256()};
    end server_end{manager_.sha256()};
    try {
      Botan::TLS::Server server{server_end, server_sessions(), server_creds_, policy_, rng_};
      Botan::TLS::Client client{client_end,
                                client_sessions(),
                                client_creds_,
                                policy_,
                                rng_,
                                Botan::TLS::Server_Information("backup-bench.example.net", 9401),
                                Botan::TLS::Protocol_Version::TLS_V12};
      for (int round = 0; round < 16 && !(client_end.outbox.empty() && server_end.outbox.empty());
           ++round) {
        deliver(client_end, server);
        deliver(server_end, client);
      }
      if (!client.is_active() || !server.is_active())
        return make_error(ec::invalid_state,
                          "the bare in-memory handshake went quiet before both sides were active");
    } catch (const std::exception& e) {
      return make_error(ec::tls_failure, std::string{"bare handshake failed: "} + e.what());
    }
    return outcome{client_end.resumed};
  }

 private:
  // One side: its outgoing ciphertext, the pin it expects and whether its handshake resumed.
  struct end final : Botan::TLS::Callbacks {
    explicit end(thumbprint expected) : pin(expected) {}
    void tls_emit_data(const uint8_t data[], size_t size) override {
      outbox.insert(outbox.end(), data, data + size);
    }
    void tls_record_received(uint64_t, const uint8_t[], size_t) override {}
    void tls_alert(Botan::TLS::Alert) override {}
    bool tls_session_established(const Botan::TLS::Session&) override {
      resumed = !verified;
      return true;
    }
    // The pin check, and nothing else.
    void tls_verify_cert_chain(const std::vector<Botan::X509_Certificate>& chain,
                               const std::vector<std::shared_ptr<const Botan::OCSP::Response>>&,
                               const std::vector<Botan::Certificate_Store*>&, Botan::Usage_Type,
                               const std::string&, const Botan::TLS::Policy&) override {
      if (chain.empty() || !(thumbprint::of_der(chain.front().BER_encode()) == pin))
        throw Botan::TLS::TLS_Exception(Botan::TLS::Alert::BAD_CERTIFICATE, "pin mismatch");
      verified = true;
    }
    thumbprint pin;
    std::vector<uint8_t> outbox;
    bool verified = false;
    bool resumed = false;
  };

  // The local identity for both roles, no CA, and (server) a ticket key in resumed mode.
  struct creds final : Botan::Credentials_Manager {
    creds(identity local, std::optional<Botan::SymmetricKey> ticket)
        : local(std::move(local)), ticket(std::move(ticket)) {}
    std::vector<Botan::X509_Certificate> find_cert_chain(const std::vector<std::string>&,
                                                         const std::vector<Botan::X509_DN>&,
                                                         const std::string&,
                                                         const std::string&) override {
      return {local.internals().certificate};
    }
    Botan::Private_Key* private_key_for(const Botan::X509_Certificate&, const std::string&,
                                        const std::string&) override {
      return local.internals().key.get();
    }
    Botan::SymmetricKey psk(const std::string& type, const std::string& context,
                            const std::string& id) override {
      if (ticket && type == "tls-server" && context == "session-ticket") return *ticket;
      return Credentials_Manager::psk(type, context, id);
    }
    identity local;
    std::optional<Botan::SymmetricKey> ticket;
  };

  // The client's memory of its one server: the last session, copied in and out, nothing else
  // (Botan's in-memory manager would encrypt and re-parse it on every save and load).
  struct last_session final : Botan::TLS::Session_Manager {
    bool load_from_session_id(const std::vector<uint8_t>&, Botan::TLS::Session&) override {
      return false;
    }
    bool load_from_server_info(const Botan::TLS::Server_Information&,
                               Botan::TLS::Session& out) override {
      if (!session) return false;
      out = *session;
      return true;
    }
    void remove_entry(const std::vector<uint8_t>&) override { session.reset(); }
    size_t remove_all() override {
      size_t n = session ? 1 : 0;
      session.reset();
      return n;
    }
    void save(const Botan::TLS::Session& s) override { session = s; }
    std::chrono::seconds session_lifetime() const override { return std::chrono::hours{24}; }
    std::optional<Botan::TLS::Session> session;
  };

  bare_handshake_loop(identity manager, identity server, bool resume)
      : manager_(manager),
        server_(server),
        resume_(resume),
        client_creds_(manager, std::nullopt),
        server_creds_(server, resume ? std::optional<Botan::SymmetricKey>(rng_.random_vec(32))
                                     : std::nullopt),
        client_memory_() {}

  Botan::TLS::Session_Manager& client_sessions() {
    return resume_ ? static_cast<Botan::TLS::Session_Manager&>(client_memory_) : noop_;
  }
  // Resumption is by session ticket, which needs the ticket key and no server-side storage.
  Botan::TLS::Session_Manager& server_sessions() { return noop_; }

  static void deliver(end& from, Botan::TLS::Channel& to) {
    if (from.outbox.empty()) return;
    auto bytes = std::move(from.outbox);
    from.outbox.clear();
    to.received_data(bytes.data(), bytes.size());
  }

  Botan::System_RNG rng_;
  identity manager_;
  identity server_;
  bool resume_;
  tls_policy policy_;
  creds client_creds_;
  creds server_creds_;
  Botan::TLS::Session_Manager_Noop noop_;
  last_session client_memory_;
};

class in_memory_handshake_loop {
 public:
  /// What one handshake agreed on.
  struct outcome {
    bool resumed = false;
  };

  static caf::expected<std::unique_ptr<in_memory_handshake_loop>> create(bool resume) {
    auto manager = identity::generate({"manager-bench", "Acme Backup Ltd"},
                                      std::chrono::hours{24 * 90}, "manager-bench");
    if (!manager) return manager.error();
    auto server = identity::generate({"backup-bench.example.net", "Acme Backup Ltd"},
                                     std::chrono::hours{24 * 90}, "backup-bench");
    if (!server) return server.error();
    return std::unique_ptr<in_memory_handshake_loop>(
        new in_memory_handshake_loop(std::move(*manager), std::move(*server), resume));
  }

  in_memory_handshake_loop(const in_memory_handshake_loop&) = delete;
  in_memory_handshake_loop& operator=(const in_memory_handshake_loop&) = delete;

  caf::expected<outcome> run_once() {
    client_end_ = {};
    server_end_ = {};
    // Distinct names keep the client cache from ever offering a ticket in full mode.
    std::string host = resume_ ? "backup-bench.example.net"
                               : "backup-" + std::to_string(counter_++) + ".bench.example.net";
    tls_client_session client{manager_, pin_to(server_.sha256()), client_cache_, host,
                              9401,     client_end_.outputs()};
    tls_server_session server{server_, pin_to(manager_.sha256()), server_cache_,
                              server_end_.outputs()};
    // A full handshake takes two round trips; a few more rounds cost nothing and catch a hang.
    for (int round = 0; round < 16 && !(client_end_.outbox.empty() && server_end_.outbox.empty());
         ++round) {
      if (auto err = deliver(client_end_, server)) return err;
      if (auto err = deliver(server_end_, client)) return err;
    }
    if (!client.is_active() || !server.is_active())
      return make_error(ec::invalid_state,
                        "the in-memory handshake went quiet before both sides were active: " +
                            describe(client.failure()) + " / " + describe(server.failure()));
    auto hs = client.handshake();
    return outcome{hs && hs->resumed};
  }

  /// The manager side's session cache: after `n` full-mode handshakes it holds `n` client sessions,
  /// one per server name, as the daemon's does before it saves them at stop.
  const std::shared_ptr<tls_session_cache>& client_cache() const { return client_cache_; }

 private:
  // One side's view: ciphertext waiting for the peer.
  struct end_point {
    std::vector<uint8_t> outbox;
    tls_outputs outputs() {
      tls_outputs o;
      o.ciphertext = [this](const uint8_t* d, size_t n) { outbox.insert(outbox.end(), d, d + n); };
      o.message = [](wire::message&&) {};
      return o;
    }
  };

  in_memory_handshake_loop(identity manager, identity server, bool resume)
      : manager_(std::move(manager)), server_(std::move(server)), resume_(resume) {}

  // The product's pin: accept exactly one thumbprint (constant-time comparison) as pinned, so the
  // session checks the key type but not the self-signature, as the daemon and the agent do for a
  // trusted peer.
  static pin_check pin_to(const thumbprint& expected) {
    return [expected](const thumbprint& presented) -> pin_check::verdict {
      if (presented == expected) return peer_trust::pinned;
      return make_error(ec::permission_denied, "presented " + presented.to_string() +
                                                   ", expected " + expected.to_string());
    };
  }

  static caf::error deliver(end_point& from, tls_session& to) {
    if (from.outbox.empty()) return {};
    auto bytes = std::move(from.outbox);
    from.outbox.clear();
    return to.received(bytes.data(), bytes.size());
  }

  identity manager_;
  identity server_;
  bool resume_;
  uint64_t counter_ = 0;
  // Sized like a 10,000-server fleet, as the daemon sizes its cache.
  std::shared_ptr<tls_session_cache> client_cache_ = std::make_shared<tls_session_cache>(10000);
  std::shared_ptr<tls_session_cache> server_cache_ = std::make_shared<tls_session_cache>(10000);
  end_point client_end_;
  end_point server_end_;
};

}  // namespace certfleet::bench
