// crypto/password_hash: the agent's account passwords (tested here with the agent that uses it).
#include "crypto/password_hash.hpp"

#include <gtest/gtest.h>

namespace certfleet {
namespace {

TEST(password_hash, the_right_password_verifies_and_a_wrong_one_does_not) {
  auto hash = hash_password(to_secret("correct horse"), hash_profile::simulation);
  ASSERT_TRUE(hash) << describe(hash.error());
  auto ok = verify_password(to_secret("correct horse"), *hash);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(*ok);
  auto wrong = verify_password(to_secret("correct horse!"), *hash);
  ASSERT_TRUE(wrong);
  EXPECT_FALSE(*wrong);
  auto empty = verify_password(to_secret(""), *hash);
  ASSERT_TRUE(empty);
  EXPECT_FALSE(*empty);
}

TEST(password_hash, the_same_password_hashes_differently_each_time_because_of_the_salt) {
  auto a = hash_password(to_secret("pw"), hash_profile::simulation);
  auto b = hash_password(to_secret("pw"), hash_profile::simulation);
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
}

TEST(password_hash, profiles_record_their_argon2id_parameters_in_the_encoded_hash) {
  auto interactive = hash_password(to_secret("pw"), hash_profile::interactive);
  auto simulation = hash_password(to_secret("pw"), hash_profile::simulation);
  ASSERT_TRUE(interactive && simulation);
  EXPECT_EQ(interactive->rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0), 0u) << *interactive;
  EXPECT_EQ(simulation->rfind("$argon2id$v=19$m=8,t=1,p=1$", 0), 0u) << *simulation;
  auto ok = verify_password(to_secret("pw"), *interactive);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(*ok);
  EXPECT_EQ(parse_hash_profile("simulation").value(), hash_profile::simulation);
  EXPECT_FALSE(parse_hash_profile("fast"));
}

TEST(password_hash, a_tampered_encoded_hash_is_refused_as_corrupt_not_as_a_wrong_password) {
  auto hash = hash_password(to_secret("pw"), hash_profile::simulation);
  ASSERT_TRUE(hash);
  const std::string h = *hash;
  std::vector<std::string> tampered = {
      "",
      "not a hash",
      "$argon2i$v=19$m=8,t=1,p=1$" + h.substr(h.find("p=1$") + 4),
      "$argon2id$v=16$m=8,t=1,p=1$" + h.substr(h.find("p=1$") + 4),
      "$argon2id$v=19$m=99999999,t=1,p=1$" + h.substr(h.find("p=1$") + 4),
      "$argon2id$v=19$m=8,t=0,p=1$" + h.substr(h.find("p=1$") + 4),
      "$argon2id$v=19$m=8,t=1$" + h.substr(h.find("p=1$") + 4),
      h.substr(0, h.rfind('$')) + "$!!!notbase64",
      h.substr(0, h.rfind('$')) + "$QUJD",  // a 3-byte hash
      h + "$extra",
  };
  for (const auto& t : tampered) {
    auto r = verify_password(to_secret("pw"), t);
    ASSERT_FALSE(r) << "accepted: " << t;
    EXPECT_EQ(code_of(r.error()), ec::corrupt_data) << t;
  }
  // A changed digit of the hash itself is well-formed: it simply no longer matches.
  // (Not the last character: for a 32-byte hash its two low bits are padding and may not matter.)
  std::string flipped = h;
  auto& c = flipped[flipped.size() - 10];
  c = c == 'A' ? 'B' : 'A';
  auto r = verify_password(to_secret("pw"), flipped);
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
}

}  // namespace
}  // namespace certfleet
