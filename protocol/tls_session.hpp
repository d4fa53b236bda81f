// Mutually authenticated TLS sessions that never touch a socket: ciphertext in, ciphertext out,
// decoded protocol messages delivered through callbacks. The manager owns one `tls_client_session`
// per backup server, the agent one `tls_server_session` per accepted connection; whoever owns the
// socket moves bytes between it and `received()` / the `ciphertext` callback.
//
// Trust is pinning, not PKIX: there is no CA. When the peer presents its certificate, the session
// computes the SHA-256 of the leaf's DER (the same value as `identity::sha256()` on the other
// side), checks that the leaf is within its validity, asks the owner's `pin_check` callback, then
// checks that the key is ECDSA P-256 and, only for a peer the owner did not pin, that the leaf is
// validly self-signed (docs/protocol.md, "Certificate verification"). A rejection aborts the
// handshake with a `bad_certificate` alert before any application data can flow; the presented
// thumbprint stays available through `peer_thumbprint()` (the manager needs it to raise a
// certificate-changed event) and the callback's reason through `pin_rejection()`. A resumed session
// presents no certificate, so the pin check runs again on the certificate remembered in the
// session: un-pinning a peer also ends its resumption.
//
// Callback rules: `ciphertext` may be called from the constructor (the client's hello), `received`,
// `send` and `close`; it must only queue or write the bytes and must not call back into the
// session. `message` and `closed` are called after Botan has returned, from `received`, so they may
// call `send` or `close`. None of the callbacks may destroy the session.
//
// Failures: `received` never throws. Handshake, certificate, record and framing errors come back as
// `ec::tls_failure` (or `ec::protocol_error` / `ec::frame_too_large` for malformed messages inside
// a healthy channel) with the alert and reason in the sentence; the session is then closed for good
// and every later call returns the same error.
//
// Thread-safety: none; a session belongs to one actor or event loop. The `tls_session_cache` is
// shared between sessions and threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "common/error.hpp"
#include "crypto/identity.hpp"
#include "crypto/thumbprint.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"
#include "protocol/tls_session_cache.hpp"

namespace certfleet {

/// How the owner knows the certificate a peer presented.
enum class peer_trust {
  /// The thumbprint is one the owner pinned (an administrator validated it, or the peer registered
  /// with it): the session checks the key type but not the self-signature, which would prove
  /// nothing more than the pin (docs/protocol.md, "Certificate verification").
  pinned,
  /// Accepted without a pin (registration, first contact): the session also checks that the
  /// certificate is validly self-signed by its own key.
  unpinned,
};

/// The owner's decision on the thumbprint of the certificate a peer presents: accept it as pinned
/// or unpinned, or reject it with an error whose sentence says why ("presented X, expected Y").
/// Called once per handshake, from inside Botan: it must not call into the session.
///
/// Two forms are accepted:
///   caf::expected<peer_trust>(const thumbprint&)   the decision, as above;
///   caf::error(const thumbprint&)                  empty error = accepted as `unpinned` (the
///                                                  self-signature is checked), else rejected.
class pin_check {
 public:
  using verdict = caf::expected<peer_trust>;

  pin_check() = default;

  template <class F, class R = std::invoke_result_t<F&, const thumbprint&>,
            class = std::enable_if_t<std::is_same_v<R, verdict> || std::is_same_v<R, caf::error>>>
  pin_check(F f) {  // NOLINT(google-explicit-constructor): both forms convert implicitly
    if constexpr (std::is_same_v<R, verdict>) {
      fn_ = std::move(f);
    } else {
      fn_ = [g = std::move(f)](const thumbprint& t) mutable -> verdict {
        if (auto err = g(t)) return err;
        return peer_trust::unpinned;
      };
    }
  }

  /// True when a decision function was given.
  explicit operator bool() const { return static_cast<bool>(fn_); }

  /// Asks the owner. Precondition: `*this` holds a function.
  verdict operator()(const thumbprint& presented) const { return fn_(presented); }

 private:
  std::function<verdict(const thumbprint&)> fn_;
};

/// Where a session's output goes.
struct tls_outputs {
  /// Ciphertext for the peer (required).
  std::function<void(const uint8_t* data, size_t size)> ciphertext;
  /// One decoded application message (required).
  std::function<void(wire::message&& msg)> message;
  /// The handshake completed and `send` may be used (optional).
  std::function<void()> activated;
  /// The peer or a failure ended the session, noticed in `received`: an empty error for the
  /// peer's close_notify, the failure otherwise (optional; at most once; not after the owner's
  /// own `close()`, and failures of `send` are reported by its return value only).
  std::function<void(const caf::error& reason)> closed;
};

struct tls_options {
  size_t max_frame_size = default_max_frame_size;
  /// The protocol versions this side speaks: received messages of another version are refused
  /// (except `hello`, see wire::decode), and sent ones carry `max_version`.
  uint8_t min_version = wire::min_protocol_version;
  uint8_t max_version = wire::protocol_version;
  /// Time used for the certificate validity check; injectable for tests.
  std::function<std::chrono::system_clock::time_point()> clock = [] {
    return std::chrono::system_clock::now();
  };
  /// How far the peer's clock may be off: its certificate is accepted from notBefore minus this
  /// to notAfter plus this, both inclusive (docs/lifecycle.md, "Pinned server certificates").
  std::chrono::seconds validity_tolerance{0};
};

/// The validity period a certificate states (X.509 notBefore and notAfter, both inclusive).
struct certificate_validity {
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
};

/// What the handshake agreed on, known once the session is established.
struct tls_handshake_info {
  std::string version;      // "TLS v1.2"
  std::string ciphersuite;  // Botan's name, e.g. "ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
  bool aead = false;
  /// "x25519" or "secp256r1"; empty when the session was resumed (no key exchange).
  std::string group;
  bool resumed = false;
};

/// The part common to both roles; built only through `tls_client_session` / `tls_server_session`.
class tls_session {
 public:
  virtual ~tls_session();
  tls_session(const tls_session&) = delete;
  tls_session& operator=(const tls_session&) = delete;

  /// Feeds ciphertext from the peer. May emit ciphertext and deliver messages. Returns the failure
  /// (see the file comment) or an empty error; never throws.
  caf::error received(const uint8_t* data, size_t size);

  /// Encrypts and sends one message. `ec::invalid_state` before the handshake completes or after
  /// the session ended; `ec::invalid_argument` for a message above the protocol's size caps.
  caf::error send(const wire::message& msg);

  /// Sends close_notify; the session is closed afterwards. Idempotent.
  void close();

  /// True between handshake completion and close or failure.
  bool is_active() const;
  /// True once closed by either side or failed.
  bool is_closed() const;

  /// The thumbprint the peer presented in this session, also when it was rejected.
  std::optional<thumbprint> peer_thumbprint() const;
  /// The DER of the certificate the peer presented (or, resumed, the one remembered in the
  /// session); empty before the peer's certificate arrived.
  const std::vector<uint8_t>& peer_certificate_der() const;
  /// The validity period of the certificate the peer presented (or, resumed, of the one
  /// remembered in the session), also when it was refused; nullopt before it arrived.
  const std::optional<certificate_validity>& peer_validity() const;
  /// Why the pin check refused the peer, as the callback said it; empty if it did not refuse.
  const caf::error& pin_rejection() const;
  /// The first failure of this session; empty while healthy or after an orderly close.
  const caf::error& failure() const;
  /// Set once the handshake completed.
  std::optional<tls_handshake_info> handshake() const;
  /// Bytes of a partly received application frame (its header included); 0 between frames.
  size_t buffered_frame_bytes() const;

  struct impl;

 protected:
  explicit tls_session(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// The manager's side. `host` and `port` name the backup server: sessions are cached per
/// (host, port), so they must be distinct per server. Emits the ClientHello from the constructor.
class tls_client_session final : public tls_session {
 public:
  tls_client_session(identity local, pin_check check, std::shared_ptr<tls_session_cache> cache,
                     const std::string& host, uint16_t port, tls_outputs outputs,
                     tls_options options = {});
};

/// The agent's side. The pin check decides which client certificates to accept (any well-formed one
/// during registration, only stored manager thumbprints afterwards).
class tls_server_session final : public tls_session {
 public:
  tls_server_session(identity local, pin_check check, std::shared_ptr<tls_session_cache> cache,
                     tls_outputs outputs, tls_options options = {});
};

}  // namespace certfleet
