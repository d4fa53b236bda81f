// The resumable TLS sessions of one endpoint and, for the manager, their persistence across a
// restart (docs/protocol.md, "Sessions across a daemon restart"). protocol/tls_session.hpp
// includes this header; the sessions use the cache, the cache knows nothing of them.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>

#include "common/error.hpp"
#include "crypto/secret.hpp"

namespace Botan::TLS {
class Session_Manager;
}

namespace certfleet {

class master_key;

/// Resumable TLS sessions of one endpoint (the manager, or one agent), shared by all its
/// connections: a bounded session store sized for the fleet (Botan's in-memory default of 1,000
/// would evict most of a large fleet) and, for a TLS server, the key that encrypts its session
/// tickets.
///
/// Client sessions are found by (host, port), server sessions by session id. At `max_sessions` the
/// least recently used session is evicted; a session older than `lifetime` (counted from its full
/// handshake, by `clock`) is neither resumed, saved nor loaded.
///
/// The manager keeps its client sessions across a restart with `save` / `load`: each session holds
/// its master secret, so it is sealed with the daemon's master key (crypto/sealing.hpp) and bound
/// to the record id "tls-session:<host>:<port>"; nothing of a session reaches the disk in
/// plaintext. Server-side sessions and the ticket key never leave memory.
///
/// Thread-safety: every member is safe to call concurrently; lookups hold one mutex only long
/// enough to find an entry and copy a pointer. The ticket key is immutable.
class tls_session_cache {
 public:
  using clock_fn = std::function<std::chrono::system_clock::time_point()>;

  /// `max_sessions` is the number of sessions remembered (0: unbounded); `lifetime` bounds how long
  /// a remembered session may be resumed; `clock` (default: the system clock) is injectable for
  /// tests.
  explicit tls_session_cache(size_t max_sessions,
                             std::chrono::seconds lifetime = std::chrono::hours{24},
                             clock_fn clock = {});
  ~tls_session_cache();
  tls_session_cache(const tls_session_cache&) = delete;
  tls_session_cache& operator=(const tls_session_cache&) = delete;

  Botan::TLS::Session_Manager& manager();
  /// The session-ticket encryption key of this process; never leaves memory.
  const secret_bytes& ticket_key() const;

  /// Number of sessions remembered now (client and server side).
  size_t size() const;

  /// Seals every unexpired client session under `sealing` and atomically replaces `file` (mode
  /// 0600) with them; an empty cache writes an empty file. The cache is unchanged. Fails with the
  /// error of `write_file_atomically` (`ec::io_error`, `ec::disk_full`, naming the file; the old
  /// file then survives) or `ec::crypto_failure`.
  caf::error save(const std::filesystem::path& file, const master_key& sealing) const;

  /// Adds the unexpired sessions of a file written by `save` and returns how many it added. A
  /// missing file adds nothing and is not an error. A file that is truncated, corrupt, of an
  /// unknown version or sealed under another master key adds nothing and fails with an error
  /// (`ec::corrupt_data`, `ec::tampered`, `ec::io_error`) naming the file and the cause: the
  /// caller logs it and carries on, the only cost being full handshakes. A corrupt or tampered
  /// file is renamed to `file` + ".corrupt" (replacing an older one) so that the next `save`
  /// does not destroy it; the error says where it went.
  caf::expected<size_t> load(const std::filesystem::path& file, const master_key& sealing);

  /// `load` for the `size` bytes at `data`, the content of a file written by `save` already in
  /// memory: the same checks, the same result and the same errors, naming `file` as the source.
  caf::expected<size_t> load_bytes(const uint8_t* data, size_t size,
                                   const std::filesystem::path& file, const master_key& sealing);

 private:
  caf::expected<size_t> load_file(const std::filesystem::path& file, const master_key& sealing);

  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace certfleet
