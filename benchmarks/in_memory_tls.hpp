// The single-core handshake limit: a manager-side `tls_client_session` and an agent-side
// `tls_server_session` (the product's classes, policy and ECDSA P-256 identities) wired to each
// other in memory, doing one mutually authenticated handshake per `run_once()` call with new
// sessions each time. No sockets, no threads: what it measures is Botan's crypto and the session
// layer's bookkeeping, which is the ceiling a connect storm on one core could reach.
//
// Full mode gives every handshake a server name the client cache has never seen, so the client
// offers no ticket, exactly as the manager does for a server it has not talked to since start.
// Resumed mode reuses one server name, so every handshake after the first offers the ticket kept in
// the client's session cache. Both caches are shared across handshakes as they are in the product.
//
// Ownership: owns both identities and both caches; build it outside static storage (Botan secure
// memory must outlive it, see ENGINEERING-NOTES pitfall 8).
// Thread-safety: none; one loop per thread.
// Failure: `create` fails when an identity cannot be generated; `run_once` returns the first error
// of either side, or `ec::invalid_state` when the sessions went quiet without both being active.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "crypto/identity.hpp"
#include "protocol/tls_session.hpp"

namespace certfleet::bench {

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

  // The product's pin: accept exactly one thumbprint (constant-time comparison).
  static pin_check pin_to(const thumbprint& expected) {
    return [expected](const thumbprint& presented) -> caf::error {
      if (presented == expected) return {};
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
