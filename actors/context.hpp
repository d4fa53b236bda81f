// The services every manager actor shares, created once by `manager::start` and outliving the
// actor system. Actors hold a `std::shared_ptr<daemon_context>`; nothing in it is mutated after
// start except the atomic counters, so it needs no lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/actor.hpp>

#include "actors/latency_histogram.hpp"
#include "actors/manager_identities.hpp"
#include "config/settings.hpp"
#include "crypto/identity.hpp"
#include "crypto/sealing.hpp"
#include "net/connector.hpp"
#include "protocol/tls_session.hpp"
#include "storage/state_store.hpp"

namespace certfleet {

/// Counters for `certfleet status` and the benchmarks.
struct daemon_counters {
  std::atomic<uint64_t> handshakes{0};
  std::atomic<uint64_t> handshake_failures{0};
  std::atomic<uint64_t> resumed_handshakes{0};
  std::atomic<uint64_t> collections{0};
  std::atomic<uint64_t> registrations{0};
  /// From the start of the TCP connect (handshake slot granted) to TLS established.
  latency_histogram handshake_latency;
  /// From sending `collect` to storing the inventory, on established connections.
  latency_histogram collection_latency;
  /// One write of the storage actor to the store: a group-committed batch (its fsync included) or
  /// one write to the log.
  latency_histogram storage_write_latency;
  /// Event subscribers (in process and over the control socket), as the event bus counts them.
  std::atomic<uint64_t> subscribers{0};
};

/// A uniformly random integer in [0, max]. Must be safe to call from any thread.
using random_fn = std::function<uint64_t(uint64_t max)>;

/// The production source of randomness: one generator seeded from std::random_device, behind a
/// mutex (the callers draw a few numbers per connection, never in a tight loop).
random_fn system_random();

struct daemon_context {
  settings cfg;
  std::unique_ptr<state_store> store;
  master_key sealing_key;
  /// The identity the daemon started with; what it presents to each server is `identities`'s.
  identity manager_identity;
  /// The current manager identity and, during a rotation, the previous one (thread-safe; the
  /// rotation actor changes it).
  std::shared_ptr<manager_identities> identities;
  /// The manager certificate's subject, sent in every hello (computing it parses the certificate).
  std::string manager_subject;
  std::shared_ptr<tls_session_cache> sessions;
  std::unique_ptr<connector> connect;
  /// Starts a TCP connect whose `done` is called exactly once, from any thread: `connect`'s by
  /// default (manager::start), the test's own in actor tests.
  std::function<void(const std::string& host, uint16_t port, std::chrono::milliseconds deadline,
                     connector::done_fn done)>
      connect_to;
  daemon_counters counters;
  /// Wall clock in unix milliseconds; injectable for tests.
  std::function<int64_t()> now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  /// Backoff and collection jitter and new server ids; injectable for tests.
  random_fn random = system_random();
  // Set before the supervisor is spawned, never changed while actors run. The supervisor itself is
  // not here: its init spawns the server actors, which would read it before spawn() returned (a
  // race that lost their first messages); each server actor is given its supervisor instead.
  caf::actor broker;
  caf::actor bus;
  /// The one writer of `store` for the actors (actors/storage_actor.hpp).
  caf::actor storage;
  /// The manager certificate rotation (actors/rotation_actor.hpp); may be unset in tests.
  caf::actor rotation;
  /// Watches the pinned server certificates (actors/renewal_actor.hpp); may be unset in tests.
  caf::actor renewal;

  daemon_context(settings c, master_key k, identity id)
      : cfg(std::move(c)),
        sealing_key(std::move(k)),
        manager_identity(std::move(id)),
        identities(std::make_shared<manager_identities>(manager_identity)),
        manager_subject(manager_identity.summary().subject) {}
};

using context_ptr = std::shared_ptr<daemon_context>;

/// A uniformly random duration in [0, max] drawn from `random`, for jitter.
std::chrono::milliseconds random_delay(const random_fn& random, std::chrono::milliseconds max);

/// Capped exponential backoff with full jitter: uniform in [0, min(cap, initial * 2^attempt)].
std::chrono::milliseconds backoff_delay(const daemon_settings& cfg, uint32_t attempt,
                                        const random_fn& random);

/// Sets the options of a connection to a server on its connected socket `fd`, before the broker
/// adopts it: TCP_USER_TIMEOUT = `cfg.peer_timeout_s`, so data the server does not acknowledge
/// for that long ends the connection in the kernel (docs/protocol.md, "Liveness"). Never fails: a
/// refused option is logged once per process as a warning (the application ping still detects a
/// dead server); `fd` stays open and owned by the caller. Thread-safe.
void apply_peer_socket_options(int fd, const daemon_settings& cfg);

}  // namespace certfleet
