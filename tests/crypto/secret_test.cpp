// The project's secret container: a standard vector whose memory is zeroed before release.
#include "crypto/secret.hpp"

#include <string>

#include <gtest/gtest.h>

namespace certfleet {
namespace {

TEST(secret_bytes, holds_what_was_copied_in_and_compares_by_content) {
  auto s = to_secret("s3cret");
  EXPECT_EQ(std::string(s.begin(), s.end()), "s3cret");
  EXPECT_EQ(s, to_secret("s3cret"));
  EXPECT_NE(s, to_secret("other"));
}

TEST(secret_bytes, grows_copies_and_moves_like_a_vector) {
  secret_bytes s;
  for (int i = 0; i < 100000; ++i) s.push_back(static_cast<uint8_t>(i));
  ASSERT_EQ(s.size(), 100000u);
  EXPECT_EQ(s[99999], static_cast<uint8_t>(99999));
  secret_bytes copy = s;
  secret_bytes moved = std::move(s);
  EXPECT_EQ(copy, moved);
  moved.clear();
  moved.shrink_to_fit();
  EXPECT_TRUE(moved.empty());
}

TEST(secret_bytes, an_empty_buffer_allocates_nothing) {
  secret_bytes s;
  s.reserve(0);
  EXPECT_EQ(s.capacity(), 0u);
}

}  // namespace
}  // namespace certfleet
