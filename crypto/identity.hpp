// A self-signed TLS identity: an ECDSA P-256 private key and its X.509 v3 certificate.
//
// Generated certificates carry a random 128-bit serial, basicConstraints CA:false, keyUsage
// digitalSignature, extendedKeyUsage serverAuth+clientAuth, and a subject (CN, O) taken from the
// installation's organisation setting, as the seed product takes it from its licence. The friendly
// name is a label kept beside the certificate, not inside it.
//
// Ownership: an `identity` owns its key and certificate (pimpl; Botan stays inside crypto/).
// Copying shares the immutable key material. Thread-safety: immutable after construction, safe to
// share between threads.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "crypto/secret.hpp"
#include "crypto/thumbprint.hpp"

namespace certfleet {

/// Who the certificate says it is. Not free-form: comes from configuration.
struct identity_subject {
  std::string common_name;
  std::string organization;
};

/// What an operator copies and sends to the other side for out-of-band verification.
struct certificate_summary {
  std::string friendly_name;
  std::string subject;        // "CN=..., O=..."
  std::string issuer;         // equals subject for self-signed certificates
  std::string serial;         // uppercase hex
  std::string not_before;     // ISO 8601 UTC, "2026-11-24T00:00:00Z"
  std::string not_after;      // ISO 8601 UTC
  std::string key_algorithm;  // "ECDSA P-256"
  thumbprint sha256;
  sha1_thumbprint sha1;
};

class identity {
 public:
  struct impl;

  /// Generates a new key and self-signed certificate valid from `now` for `validity`.
  /// Fails with `ec::invalid_argument` on an empty common name or non-positive validity, and
  /// `ec::crypto_failure` if Botan fails.
  static caf::expected<identity> generate(
      const identity_subject& subject, std::chrono::hours validity, std::string friendly_name,
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

  /// Rebuilds an identity from PEM text (PKCS#8 private key, X.509 certificate). Fails with
  /// `ec::corrupt_data` when either does not parse or the key does not belong to the certificate.
  static caf::expected<identity> from_pem(const secret_bytes& key_pem, const std::string& cert_pem,
                                          std::string friendly_name);

  const std::string& friendly_name() const;
  thumbprint sha256() const;
  sha1_thumbprint sha1() const;
  std::chrono::system_clock::time_point not_before() const;
  std::chrono::system_clock::time_point not_after() const;
  certificate_summary summary() const;

  std::vector<uint8_t> certificate_der() const;
  std::string certificate_pem() const;
  /// Unencrypted PKCS#8 PEM of the private key; write it only through the certificate store.
  secret_bytes private_key_pem() const;

  /// Botan objects for protocol/ (see crypto/botan_identity.hpp).
  const impl& internals() const { return *impl_; }

 private:
  explicit identity(std::shared_ptr<const impl> p) : impl_(std::move(p)) {}
  std::shared_ptr<const impl> impl_;
};

}  // namespace certfleet
