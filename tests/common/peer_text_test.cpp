// Peer text made safe to show and log (common/peer_text.hpp).
#include "common/peer_text.hpp"

#include <gtest/gtest.h>

namespace certfleet {
namespace {

using namespace std::string_literals;

TEST(peer_text, plain_text_and_utf8_pass_unchanged) {
  EXPECT_EQ(peer_text("vbr-01.example.net"), "vbr-01.example.net");
  EXPECT_EQ(peer_text("Äpfel – 東京 🙂"), "Äpfel – 東京 🙂");
  EXPECT_EQ(peer_text(""), "");
}

TEST(peer_text, terminal_and_line_control_bytes_are_escaped) {
  EXPECT_EQ(peer_text("a\x1b[31mred"), "a\\x1B[31mred") << "ESC";
  EXPECT_EQ(peer_text("ding\x07"), "ding\\x07") << "BEL";
  EXPECT_EQ(peer_text("x\r\n2026-11-29 [info] manager registered"),
            "x\\x0D\\x0A2026-11-29 [info] manager registered")
      << "CR LF cannot start a forged log line";
  EXPECT_EQ(peer_text("nul\0byte"s), "nul\\x00byte") << "NUL";
  EXPECT_EQ(peer_text("tab\tdel\x7f"), "tab\\x09del\\x7F");
}

TEST(peer_text, escapes_cannot_be_forged_with_a_backslash) {
  EXPECT_EQ(peer_text("\\x1B"), "\\\\x1B");
}

TEST(peer_text, invalid_utf8_and_unicode_controls_are_escaped) {
  EXPECT_EQ(peer_text("\xff\xfe"), "\\xFF\\xFE");
  EXPECT_EQ(peer_text("\xc3"), "\\xC3") << "truncated sequence";
  EXPECT_EQ(peer_text("\xc0\xaf"), "\\xC0\\xAF") << "overlong form";
  EXPECT_EQ(peer_text("\xed\xa0\x80"), "\\xED\\xA0\\x80") << "surrogate";
  EXPECT_EQ(peer_text("\xc2\x9b"
                      "31m"),
            "\\u{009B}31m")
      << "C1 CSI";
  EXPECT_EQ(peer_text("a\xe2\x80\xa8z"), "a\\u{2028}z") << "line separator";
}

TEST(peer_text, long_text_is_cut_at_a_character_boundary_and_says_how_much_is_missing) {
  EXPECT_EQ(peer_text(std::string(300, 'a')), std::string(256, 'a') + "...(44 more bytes)");
  EXPECT_EQ(peer_text("abcdef", 4), "abcd...(2 more bytes)");
  EXPECT_EQ(peer_text("ab\xc3\xa4", 3), "ab...(2 more bytes)") << "not half of the ä";
  std::string huge(1 << 20, '\x1b');
  EXPECT_LE(peer_text(huge).size(), 4 * peer_text_max_bytes + 32);
}

TEST(peer_text, the_result_never_contains_a_control_byte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  auto out = peer_text(all, all.size());
  for (char c : out) {
    auto b = static_cast<unsigned char>(c);
    EXPECT_FALSE(b < 0x20 || b == 0x7F) << "byte " << int(b);
  }
}

}  // namespace
}  // namespace certfleet
