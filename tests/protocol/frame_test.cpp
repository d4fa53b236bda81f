#include "protocol/frame.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace certfleet {
namespace {

secret_bytes frame_of(const std::string& payload) {
  auto f = encode_frame(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
  EXPECT_TRUE(f) << describe(f.error());
  return f ? *f : secret_bytes{};
}

std::string text_of(const secret_bytes& b) {
  return {b.begin(), b.end()};
}

TEST(frame, encoded_frame_is_a_big_endian_length_followed_by_the_payload) {
  auto f = frame_of("abc");
  EXPECT_EQ(std::vector<uint8_t>(f.begin(), f.end()),
            (std::vector<uint8_t>{0, 0, 0, 3, 'a', 'b', 'c'}));
}

TEST(frame, encoding_refuses_an_empty_payload_and_one_above_the_maximum) {
  uint8_t byte = 1;
  auto empty = encode_frame(&byte, 0);
  ASSERT_FALSE(empty);
  EXPECT_EQ(code_of(empty.error()), ec::protocol_error);
  std::vector<uint8_t> big(17, 0);
  auto too_big = encode_frame(big.data(), big.size(), 16);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(code_of(too_big.error()), ec::frame_too_large);
}

TEST(frame, decoder_reassembles_a_frame_fed_one_byte_at_a_time) {
  frame_decoder d;
  auto f = frame_of("hello, fleet");
  for (size_t i = 0; i < f.size(); ++i) {
    EXPECT_FALSE(d.next()) << "a payload appeared after only " << i << " bytes";
    ASSERT_FALSE(d.feed(&f[i], 1));
  }
  auto p = d.next();
  ASSERT_TRUE(p);
  EXPECT_EQ(text_of(*p), "hello, fleet");
  EXPECT_FALSE(d.next());
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(frame, decoder_yields_every_frame_of_one_chunk_in_order_and_keeps_a_partial_tail) {
  frame_decoder d;
  secret_bytes stream;
  for (auto s : {"one", "two", "three"}) {
    auto f = frame_of(s);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  auto tail = frame_of("four");
  stream.insert(stream.end(), tail.begin(), tail.begin() + 5);
  ASSERT_FALSE(d.feed(stream.data(), stream.size()));
  EXPECT_EQ(text_of(*d.next()), "one");
  EXPECT_EQ(text_of(*d.next()), "two");
  EXPECT_EQ(text_of(*d.next()), "three");
  EXPECT_FALSE(d.next());
  EXPECT_EQ(d.buffered(), 5u);
  ASSERT_FALSE(d.feed(tail.data() + 5, tail.size() - 5));
  EXPECT_EQ(text_of(*d.next()), "four");
}

TEST(frame, zero_length_prefix_is_a_protocol_error) {
  frame_decoder d;
  const uint8_t zero[] = {0, 0, 0, 0};
  auto err = d.feed(zero, sizeof(zero));
  EXPECT_EQ(code_of(err), ec::protocol_error);
  EXPECT_TRUE(d.failed());
}

TEST(frame, a_hostile_four_gigabyte_prefix_fails_as_soon_as_the_prefix_arrives) {
  frame_decoder d;
  const uint8_t prefix[] = {0xFF, 0xFF, 0xFF, 0xFF};
  auto err = d.feed(prefix, sizeof(prefix));
  EXPECT_EQ(code_of(err), ec::frame_too_large);
  EXPECT_NE(describe(err).find("4294967295"), std::string::npos) << describe(err);
  EXPECT_LE(d.buffered(), sizeof(prefix));
}

TEST(frame, the_configured_maximum_is_accepted_and_one_byte_more_is_not) {
  frame_decoder ok{16};
  const uint8_t sixteen[] = {0, 0, 0, 16};
  EXPECT_FALSE(ok.feed(sixteen, sizeof(sixteen)));
  frame_decoder too_big{16};
  const uint8_t seventeen[] = {0, 0, 0, 17};
  EXPECT_EQ(code_of(too_big.feed(seventeen, sizeof(seventeen))), ec::frame_too_large);
}

TEST(frame, the_body_buffer_grows_only_with_bytes_actually_received) {
  frame_decoder d;
  const uint8_t prefix[] = {0x00, 0x10, 0x00, 0x00};  // announces exactly 1 MiB
  ASSERT_FALSE(d.feed(prefix, sizeof(prefix)));
  std::vector<uint8_t> some(10, 'x');
  ASSERT_FALSE(d.feed(some.data(), some.size()));
  EXPECT_EQ(d.buffered(), 14u);
  EXPECT_FALSE(d.next());
}

TEST(frame, a_failed_decoder_refuses_all_further_input) {
  frame_decoder d;
  const uint8_t zero[] = {0, 0, 0, 0};
  auto first = d.feed(zero, sizeof(zero));
  ASSERT_TRUE(first);
  auto good = frame_of("fine");
  auto again = d.feed(good.data(), good.size());
  EXPECT_EQ(code_of(again), ec::protocol_error);
  EXPECT_FALSE(d.next());
}

TEST(frame, frames_completed_before_a_bad_prefix_in_the_same_chunk_stay_available) {
  frame_decoder d;
  auto good = frame_of("first");
  secret_bytes stream(good.begin(), good.end());
  for (int i = 0; i < 4; ++i) stream.push_back(0);
  EXPECT_EQ(code_of(d.feed(stream.data(), stream.size())), ec::protocol_error);
  auto p = d.next();
  ASSERT_TRUE(p);
  EXPECT_EQ(text_of(*p), "first");
}

}  // namespace
}  // namespace certfleet
