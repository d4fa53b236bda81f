// Certificate thumbprints: SHA-256 (primary) and SHA-1 (the form Windows tools show) of a DER
// certificate.
//
// A thumbprint holds raw digest bytes. `to_string` prints uppercase hex without separators
// ("3F2A..."); `to_colon_string` prints "3F:2A:..." as openssl does. `parse` accepts either form in
// any case, with spaces, and with an optional "SHA256:" (or "SHA1:") prefix, and rejects a wrong
// length or a non-hex character with `ec::bad_thumbprint` naming what is wrong. Equality compares
// in constant time.
//
// Thread-safety: value type; immutable after construction.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace certfleet {

template <size_t N>
class basic_thumbprint {
 public:
  static constexpr size_t size = N;

  basic_thumbprint() = default;
  explicit basic_thumbprint(const std::array<uint8_t, N>& bytes) : bytes_(bytes) {}

  /// The digest of a DER-encoded certificate.
  static basic_thumbprint of_der(const uint8_t* der, size_t len);
  static basic_thumbprint of_der(const std::vector<uint8_t>& der) {
    return of_der(der.data(), der.size());
  }

  /// Parses a user-supplied thumbprint (see the file comment for the accepted forms).
  static caf::expected<basic_thumbprint> parse(std::string_view text);

  /// Constructs from exactly N raw bytes; fails with `ec::bad_thumbprint` on any other length.
  static caf::expected<basic_thumbprint> from_bytes(const uint8_t* data, size_t len);

  const std::array<uint8_t, N>& bytes() const { return bytes_; }
  std::string to_string() const;
  std::string to_colon_string() const;

  /// Constant-time comparison.
  bool operator==(const basic_thumbprint& other) const;
  bool operator!=(const basic_thumbprint& other) const { return !(*this == other); }

 private:
  std::array<uint8_t, N> bytes_{};
};

/// SHA-256 thumbprint: what certfleet pins and compares.
using thumbprint = basic_thumbprint<32>;
/// SHA-1 thumbprint: shown for operators who compare with Windows certificate dialogs.
using sha1_thumbprint = basic_thumbprint<20>;

extern template class basic_thumbprint<32>;
extern template class basic_thumbprint<20>;

}  // namespace certfleet
