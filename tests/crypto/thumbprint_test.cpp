#include "crypto/thumbprint.hpp"

#include <cctype>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace certfleet {
namespace {

// SHA-256("abc") and SHA-1("abc"): FIPS 180-2 test vectors, so the digest is checked as well as
// the formatting.
const std::string abc_sha256 = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
const std::string abc_sha1 = "A9993E364706816ABA3E25717850C26C9CD0D89D";

std::vector<uint8_t> abc() {
  return {'a', 'b', 'c'};
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string with_separator(const std::string& hex, char sep) {
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (i > 0) out += sep;
    out.append(hex, i, 2);
  }
  return out;
}

TEST(thumbprint, digest_of_der_matches_the_published_sha256_and_sha1_vectors) {
  EXPECT_EQ(thumbprint::of_der(abc()).to_string(), abc_sha256);
  EXPECT_EQ(sha1_thumbprint::of_der(abc()).to_string(), abc_sha1);
}

TEST(thumbprint, colon_string_looks_like_openssl_output) {
  EXPECT_EQ(thumbprint::of_der(abc()).to_colon_string(), with_separator(abc_sha256, ':'));
  EXPECT_EQ(sha1_thumbprint::of_der(abc()).to_colon_string(), with_separator(abc_sha1, ':'));
}

TEST(thumbprint, parse_accepts_every_form_an_operator_may_paste) {
  auto expected = thumbprint::of_der(abc());
  const std::vector<std::string> accepted = {
      abc_sha256,
      lower(abc_sha256),
      with_separator(abc_sha256, ':'),
      lower(with_separator(abc_sha256, ':')),
      with_separator(abc_sha256, ' '),
      "SHA256:" + abc_sha256,
      "sha256:" + lower(abc_sha256),
      "Sha256:" + with_separator(abc_sha256, ':'),
      "  " + abc_sha256 + " ",
  };
  for (const auto& text : accepted) {
    auto parsed = thumbprint::parse(text);
    ASSERT_TRUE(parsed) << text << ": " << describe(parsed.error());
    EXPECT_EQ(*parsed, expected) << text;
  }
}

TEST(thumbprint, parse_accepts_sha1_with_its_own_prefix) {
  auto parsed = sha1_thumbprint::parse("sha1:" + with_separator(lower(abc_sha1), ':'));
  ASSERT_TRUE(parsed) << describe(parsed.error());
  EXPECT_EQ(*parsed, sha1_thumbprint::of_der(abc()));
}

TEST(thumbprint, parse_rejects_a_wrong_length_and_says_how_many_digits_it_found) {
  struct row {
    std::string text;
    std::string digits_found;
  };
  const std::vector<row> rows = {
      {abc_sha256.substr(0, 62), "has 62 hex digits"},
      {abc_sha256 + "00", "has 66 hex digits"},
      {"", "has 0 hex digits"},
      {abc_sha1, "has 40 hex digits"},  // a SHA-1 thumbprint where SHA-256 is expected
  };
  for (const auto& r : rows) {
    auto parsed = thumbprint::parse(r.text);
    ASSERT_FALSE(parsed) << r.text;
    EXPECT_EQ(code_of(parsed.error()), ec::bad_thumbprint);
    auto message = describe(parsed.error());
    EXPECT_NE(message.find(r.digits_found), std::string::npos) << message;
    EXPECT_NE(message.find("SHA-256 thumbprint has 64"), std::string::npos) << message;
  }
}

TEST(thumbprint, parse_rejects_a_non_hex_character_and_names_it) {
  auto text = abc_sha256;
  text[10] = 'g';
  auto parsed = thumbprint::parse(text);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(code_of(parsed.error()), ec::bad_thumbprint);
  auto message = describe(parsed.error());
  EXPECT_NE(message.find("contains 'g'"), std::string::npos) << message;
  EXPECT_NE(message.find("not a hexadecimal digit"), std::string::npos) << message;
  EXPECT_NE(message.find(text), std::string::npos) << message;

  auto dashed = thumbprint::parse(with_separator(abc_sha256, '-'));
  ASSERT_FALSE(dashed);
  EXPECT_NE(describe(dashed.error()).find("contains '-'"), std::string::npos);
}

TEST(thumbprint, from_bytes_rejects_a_wrong_length) {
  std::vector<uint8_t> bytes(31, 0xAB);
  auto t = thumbprint::from_bytes(bytes.data(), bytes.size());
  ASSERT_FALSE(t);
  EXPECT_EQ(code_of(t.error()), ec::bad_thumbprint);
  EXPECT_NE(describe(t.error()).find("must be 32 bytes, got 31"), std::string::npos);
  bytes.push_back(0xAB);
  EXPECT_TRUE(thumbprint::from_bytes(bytes.data(), bytes.size()));
}

TEST(thumbprint, equality_distinguishes_a_single_bit) {
  auto a = thumbprint::of_der(abc());
  auto bytes = a.bytes();
  bytes[31] ^= 1;
  EXPECT_NE(a, thumbprint{bytes});
  EXPECT_EQ(a, thumbprint{a.bytes()});
}

}  // namespace
}  // namespace certfleet
