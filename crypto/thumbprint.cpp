#include "crypto/thumbprint.hpp"

#include <botan/hash.h>
#include <botan/mem_ops.h>

#include <cctype>

namespace certfleet {
namespace {

const char* hash_name(size_t n) {
  return n == 32 ? "SHA-256" : "SHA-1";
}
const char* prefix_name(size_t n) {
  return n == 32 ? "SHA256:" : "SHA1:";
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  return true;
}

}  // namespace

template <size_t N>
basic_thumbprint<N> basic_thumbprint<N>::of_der(const uint8_t* der, size_t len) {
  auto hash = Botan::HashFunction::create_or_throw(hash_name(N));
  hash->update(der, len);
  std::array<uint8_t, N> out;
  hash->final(out.data());
  return basic_thumbprint{out};
}

template <size_t N>
caf::expected<basic_thumbprint<N>> basic_thumbprint<N>::parse(std::string_view text) {
  auto original = std::string{text};
  if (starts_with_ci(text, prefix_name(N)))
    text.remove_prefix(std::string_view{prefix_name(N)}.size());
  std::array<uint8_t, N> out{};
  size_t digits = 0;
  for (char c : text) {
    if (c == ':' || c == ' ' || c == '\t') continue;
    int v = hex_value(c);
    if (v < 0)
      return make_error(ec::bad_thumbprint, "thumbprint '" + original + "' contains '" +
                                                std::string(1, c) +
                                                "', which is not a hexadecimal digit");
    if (digits / 2 < N) out[digits / 2] = static_cast<uint8_t>((out[digits / 2] << 4) | v);
    ++digits;
  }
  if (digits != 2 * N)
    return make_error(ec::bad_thumbprint, "thumbprint '" + original + "' has " +
                                              std::to_string(digits) + " hex digits; a " +
                                              hash_name(N) + " thumbprint has " +
                                              std::to_string(2 * N));
  return basic_thumbprint{out};
}

template <size_t N>
caf::expected<basic_thumbprint<N>> basic_thumbprint<N>::from_bytes(const uint8_t* data,
                                                                   size_t len) {
  if (len != N)
    return make_error(ec::bad_thumbprint, std::string{hash_name(N)} + " thumbprint must be " +
                                              std::to_string(N) + " bytes, got " +
                                              std::to_string(len));
  std::array<uint8_t, N> out;
  std::copy(data, data + N, out.begin());
  return basic_thumbprint{out};
}

template <size_t N>
std::string basic_thumbprint<N>::to_string() const {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(2 * N);
  for (auto b : bytes_) {
    out += digits[b >> 4];
    out += digits[b & 0xF];
  }
  return out;
}

template <size_t N>
std::string basic_thumbprint<N>::to_colon_string() const {
  auto hex = to_string();
  std::string out;
  out.reserve(3 * N);
  for (size_t i = 0; i < N; ++i) {
    if (i > 0) out += ':';
    out.append(hex, 2 * i, 2);
  }
  return out;
}

template <size_t N>
bool basic_thumbprint<N>::operator==(const basic_thumbprint& other) const {
  return Botan::constant_time_compare(bytes_.data(), other.bytes_.data(), N);
}

template class basic_thumbprint<32>;
template class basic_thumbprint<20>;

}  // namespace certfleet
