#include "crypto/manager_rotation.hpp"

#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "tests/crypto/test_support.hpp"

namespace certfleet {
namespace {

using certfleet::testing::temp_dir;

identity make_identity(
    const std::string& name, std::chrono::hours validity = std::chrono::hours{24},
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
  auto id = identity::generate({"manager.example.net", "Acme Backup Ltd"}, validity, name, now);
  EXPECT_TRUE(id) << describe(id.error());
  return std::move(*id);
}

std::string contents(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(successor_certificate, a_valid_self_signed_p256_certificate_is_accepted_by_its_thumbprint) {
  auto id = make_identity("next");
  auto t = check_successor_certificate(id.certificate_der(), std::chrono::system_clock::now(),
                                       std::chrono::seconds{300});
  ASSERT_TRUE(t) << describe(t.error());
  EXPECT_EQ(*t, id.sha256());
}

TEST(successor_certificate, garbage_an_expired_or_a_future_certificate_is_refused_with_the_reason) {
  auto now = std::chrono::system_clock::now();
  auto garbage = check_successor_certificate({1, 2, 3}, now, std::chrono::seconds{0});
  ASSERT_FALSE(garbage);
  EXPECT_NE(describe(garbage.error()).find("not a readable"), std::string::npos);
  auto old = make_identity("old", std::chrono::hours{1}, now - std::chrono::hours{3});
  auto expired = check_successor_certificate(old.certificate_der(), now, std::chrono::seconds{0});
  ASSERT_FALSE(expired);
  EXPECT_NE(describe(expired.error()).find("expired"), std::string::npos);
  auto future = make_identity("future", std::chrono::hours{24}, now + std::chrono::hours{2});
  auto early =
      check_successor_certificate(future.certificate_der(), now, std::chrono::seconds{300});
  ASSERT_FALSE(early);
  EXPECT_NE(describe(early.error()).find("not valid yet"), std::string::npos);
}

TEST(retire_previous_identity, destroys_the_previous_key_and_keeps_the_current_identity) {
  temp_dir dir;
  auto store = certificate_store::open(dir.path() / "certs", true);
  ASSERT_TRUE(store);
  auto old = make_identity("old");
  auto next = make_identity("next");
  ASSERT_FALSE(store->install(old));
  ASSERT_FALSE(store->install(next));
  auto key_file = dir.path() / "certs" / (old.summary().serial + ".key");
  ASSERT_TRUE(std::filesystem::exists(key_file));
  auto key_pem = old.private_key_pem();
  auto key_text = std::string(key_pem.begin(), key_pem.end());

  // Another thumbprint: nothing happens.
  auto wrong = retire_previous_identity(*store, next.sha256());
  ASSERT_TRUE(wrong);
  EXPECT_FALSE(*wrong);
  EXPECT_TRUE(std::filesystem::exists(key_file));

  auto retired = retire_previous_identity(*store, old.sha256());
  ASSERT_TRUE(retired) << describe(retired.error());
  EXPECT_TRUE(*retired);
  EXPECT_FALSE(std::filesystem::exists(key_file));
  for (const auto& e : std::filesystem::directory_iterator(dir.path() / "certs"))
    EXPECT_EQ(contents(e.path()).find(key_text.substr(40, 40)), std::string::npos) << e.path();
  auto previous = store->load_previous();
  ASSERT_TRUE(previous);
  EXPECT_FALSE(*previous);
  auto current = store->load_current();
  ASSERT_TRUE(current);
  EXPECT_EQ(current->sha256(), next.sha256());
  // Idempotent.
  auto again = retire_previous_identity(*store, old.sha256());
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
}

TEST(scrub_file, overwrites_before_unlinking_so_an_open_descriptor_reads_zeros) {
  temp_dir dir;
  auto file = dir.path() / "secret.key";
  {
    std::ofstream out(file);
    out << "-----BEGIN PRIVATE KEY-----secret-----END PRIVATE KEY-----";
  }
  std::ifstream held(file, std::ios::binary);  // still open after the unlink: same inode
  ASSERT_FALSE(scrub_file(file));
  EXPECT_FALSE(std::filesystem::exists(file));
  std::string seen{std::istreambuf_iterator<char>(held), std::istreambuf_iterator<char>()};
  EXPECT_EQ(seen, std::string(seen.size(), '\0'));
  EXPECT_FALSE(seen.empty());
  EXPECT_FALSE(scrub_file(file)) << "a missing file is not an error";
}

}  // namespace
}  // namespace certfleet
