// Internal: conversions between `secret_bytes` and Botan's `secure_vector`, for crypto/ and
// protocol/ only (nothing else may include a Botan header). Both types zero their memory on
// release; a conversion copies, and the source is scrubbed by its own allocator when it goes.
#pragma once

#include <botan/secmem.h>

#include "crypto/secret.hpp"

namespace certfleet {

inline Botan::secure_vector<uint8_t> to_botan(const secret_bytes& s) {
  return Botan::secure_vector<uint8_t>(s.begin(), s.end());
}

inline secret_bytes from_botan(const Botan::secure_vector<uint8_t>& s) {
  return secret_bytes(s.begin(), s.end());
}

}  // namespace certfleet
