// The one TLS policy of certfleet, used by both the manager (TLS client) and the backup-server
// agent (TLS server). Botan-specific: only protocol/ includes it.
//
// TLS 1.2 only (Botan 2 has no TLS 1.3); ECDHE with X25519 first, then P-256 (never CECPQ1, DH or
// RSA key exchange: Botan may otherwise pick CECPQ1 between two Botan peers); ECDSA signatures with
// SHA-256/384; AEAD ciphers only (AES-256/GCM, AES-128/GCM, ChaCha20Poly1305); no renegotiation in
// either direction; the server always demands a client certificate (Botan 2 servers otherwise ask
// for none and the client silently sends none); session tickets are allowed so that reconnect
// storms resume cheaply. Certificate status (OCSP stapling) is off: trust is pinning, there is no
// CA.
//
// Thread-safety: stateless; one instance may be shared by any number of channels and threads.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <botan/tls_policy.h>

namespace certfleet {

class tls_policy final : public Botan::TLS::Policy {
 public:
  /// How long a server-issued session ticket stays valid (the hint sent to the client).
  static constexpr std::chrono::seconds ticket_lifetime = std::chrono::hours{24};

  std::vector<std::string> allowed_ciphers() const override;
  std::vector<std::string> allowed_signature_hashes() const override;
  std::vector<std::string> allowed_macs() const override;
  std::vector<std::string> allowed_key_exchange_methods() const override;
  std::vector<std::string> allowed_signature_methods() const override;
  std::vector<Botan::TLS::Group_Params> key_exchange_groups() const override;

  bool allow_tls10() const override { return false; }
  bool allow_tls11() const override { return false; }
  bool allow_tls12() const override { return true; }
  bool allow_dtls10() const override { return false; }
  bool allow_dtls12() const override { return false; }

  bool allow_client_initiated_renegotiation() const override { return false; }
  bool allow_server_initiated_renegotiation() const override { return false; }
  bool allow_insecure_renegotiation() const override { return false; }

  bool require_client_certificate_authentication() const override { return true; }
  bool support_cert_status_message() const override { return false; }
  bool server_uses_own_ciphersuite_preferences() const override { return true; }
  uint32_t session_ticket_lifetime() const override;
  /// Bytes, not certificates: a self-signed P-256 leaf is about 500 bytes; refuse huge chains.
  size_t maximum_certificate_chain_size() const override { return 16 * 1024; }
};

}  // namespace certfleet
