#include "common/peer_text.hpp"

#include <algorithm>
#include <cstdint>

namespace certfleet {
namespace {

void append_hex_byte(std::string& out, uint8_t b) {
  static constexpr char digits[] = "0123456789ABCDEF";
  out += "\\x";
  out += digits[b >> 4];
  out += digits[b & 0xF];
}

/// The length of the valid UTF-8 sequence starting at `s[i]` (2 to 4), with its code point; 0 when
/// the bytes there are not one (overlong forms and surrogates included).
size_t utf8_sequence(std::string_view s, size_t i, uint32_t& cp) {
  auto b0 = static_cast<uint8_t>(s[i]);
  size_t len = 0;
  uint32_t min = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
    min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
    min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    auto b = static_cast<uint8_t>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

}  // namespace

std::string peer_text(std::string_view text, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + 8);
  size_t i = 0;
  while (i < text.size()) {
    auto b = static_cast<uint8_t>(text[i]);
    size_t len = 1;
    uint32_t cp = b;
    if (b >= 0x80) {
      len = utf8_sequence(text, i, cp);
      if (len == 0) len = 1;
    }
    if (i + len > max_bytes) break;
    if (b < 0x80) {
      if (b < 0x20 || b == 0x7F)
        append_hex_byte(out, b);
      else if (b == '\\')
        out += "\\\\";
      else
        out += static_cast<char>(b);
    } else if (len == 1) {
      append_hex_byte(out, b);
    } else if ((cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029) {
      static constexpr char digits[] = "0123456789ABCDEF";
      out += "\\u{";
      for (int shift = 12; shift >= 0; shift -= 4) out += digits[(cp >> shift) & 0xF];
      out += '}';
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  if (i < text.size()) out += "...(" + std::to_string(text.size() - i) + " more bytes)";
  return out;
}

}  // namespace certfleet
