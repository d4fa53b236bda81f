#include "common/bytes.hpp"

#include <gtest/gtest.h>

namespace certfleet {
namespace {

TEST(bytes, integers_and_strings_round_trip) {
  byte_writer w;
  w.u8(7);
  w.u16(0xBEEF);
  w.u32(0xDEADBEEF);
  w.u64(0x0123456789ABCDEFull);
  w.i64(-5);
  w.str("hello");
  auto buf = w.take();
  byte_reader r{buf};
  uint8_t a;
  uint16_t b;
  uint32_t c;
  uint64_t d;
  int64_t e;
  std::string s;
  ASSERT_TRUE(r.u8(a) && r.u16(b) && r.u32(c) && r.u64(d) && r.i64(e) && r.str(s));
  EXPECT_EQ(a, 7);
  EXPECT_EQ(b, 0xBEEF);
  EXPECT_EQ(c, 0xDEADBEEFu);
  EXPECT_EQ(d, 0x0123456789ABCDEFull);
  EXPECT_EQ(e, -5);
  EXPECT_EQ(s, "hello");
  EXPECT_TRUE(r.at_end());
}

TEST(bytes, length_prefix_past_the_end_fails_without_allocating_and_stays_failed) {
  std::vector<uint8_t> hostile{0xFF, 0xFF, 0xFF, 0xFF, 'a'};
  byte_reader r{hostile};
  std::string s;
  EXPECT_FALSE(r.str(s, SIZE_MAX));
  EXPECT_TRUE(r.failed());
  uint8_t x;
  EXPECT_FALSE(r.u8(x));
  EXPECT_FALSE(r.at_end());
}

TEST(bytes, string_longer_than_the_caller_limit_is_rejected) {
  byte_writer w;
  w.str("abcdef");
  auto buf = w.take();
  byte_reader r{buf};
  std::string s;
  EXPECT_FALSE(r.str(s, 5));
}

}  // namespace
}  // namespace certfleet
