// Reading a certificate someone else owns (a peer's, kept as DER): its summary and its PEM text,
// without a private key. The summary has the same fields and formats as `identity::summary()`
// (crypto/identity.hpp), with an empty friendly name.
//
// Failures: `ec::corrupt_data` when the bytes are not a readable X.509 certificate.
// Thread-safety: stateless.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "crypto/identity.hpp"

namespace certfleet {

/// Subject, issuer, serial, validity, key algorithm and both thumbprints of `der`.
caf::expected<certificate_summary> summarize_certificate(const std::vector<uint8_t>& der);

/// "-----BEGIN CERTIFICATE-----" ... PEM text of `der` (checked to be a certificate first).
caf::expected<std::string> certificate_pem_of(const std::vector<uint8_t>& der);

}  // namespace certfleet
