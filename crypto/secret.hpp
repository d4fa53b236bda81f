// The one container for secrets in memory: passwords, master keys, plaintext credentials.
//
// `secret_bytes` is Botan's secure_vector: its allocator locks pages where it can and zeroes memory
// on release. Code outside crypto/ uses the alias and never names Botan.
#pragma once

#include <string_view>

#include <botan/secmem.h>

namespace certfleet {

using secret_bytes = Botan::secure_vector<uint8_t>;

/// Copies `s` into a secret buffer. The caller is responsible for the lifetime of `s` itself.
inline secret_bytes to_secret(std::string_view s) {
  return secret_bytes(reinterpret_cast<const uint8_t*>(s.data()),
                      reinterpret_cast<const uint8_t*>(s.data()) + s.size());
}

}  // namespace certfleet
