#include "crypto/sealing.hpp"

#include <sys/stat.h>

#include <string>

#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "tests/crypto/test_support.hpp"

namespace certfleet {
namespace {

using certfleet::testing::mode_of;
using certfleet::testing::temp_dir;

const std::string record = "server/backup-07";
const std::string password = "correct horse battery staple";

struct sealing_fixture {
  temp_dir tmp;
  std::filesystem::path key_file = tmp.path() / "master.key";
  master_key key = [this] {
    auto k = master_key::create(key_file);
    EXPECT_TRUE(k) << describe(k.error());
    return std::move(*k);
  }();
};

void expect_tampered(const caf::expected<secret_bytes>& opened, const std::string& what) {
  ASSERT_FALSE(opened) << what << " opened";
  EXPECT_EQ(code_of(opened.error()), ec::tampered) << what << ": " << describe(opened.error());
  EXPECT_NE(describe(opened.error()).find("'" + record + "'"), std::string::npos)
      << what << ": " << describe(opened.error());
}

TEST(sealing, sealed_secret_opens_to_the_original_plaintext) {
  sealing_fixture f;
  auto blob = seal(f.key, record, to_secret(password));
  ASSERT_TRUE(blob) << describe(blob.error());
  // version | nonce | ciphertext | tag
  EXPECT_EQ(blob->bytes.size(), 1 + 12 + password.size() + 16);
  EXPECT_EQ(blob->bytes[0], 1);
  EXPECT_EQ(std::string(blob->bytes.begin(), blob->bytes.end()).find(password), std::string::npos);

  auto opened = open(f.key, record, *blob);
  ASSERT_TRUE(opened) << describe(opened.error());
  EXPECT_EQ(*opened, to_secret(password));
}

TEST(sealing, empty_secret_round_trips) {
  sealing_fixture f;
  auto blob = seal(f.key, record, secret_bytes{});
  ASSERT_TRUE(blob);
  auto opened = open(f.key, record, *blob);
  ASSERT_TRUE(opened) << describe(opened.error());
  EXPECT_TRUE(opened->empty());
}

TEST(sealing, sealing_twice_uses_a_fresh_nonce) {
  sealing_fixture f;
  auto a = seal(f.key, record, to_secret(password));
  auto b = seal(f.key, record, to_secret(password));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->bytes, b->bytes);
}

TEST(sealing, any_flipped_bit_is_reported_as_tampering) {
  sealing_fixture f;
  auto blob = seal(f.key, record, to_secret(password));
  ASSERT_TRUE(blob);
  const size_t size = blob->bytes.size();
  // version byte, first and last nonce bytes, body, first and last tag bytes
  const std::vector<std::pair<size_t, uint8_t>> flips = {
      {0, 0x01},         {1, 0x80},       {12, 0x01}, {13, 0x01}, {13 + password.size() / 2, 0x10},
      {size - 16, 0x01}, {size - 1, 0x80}};
  for (auto [pos, mask] : flips) {
    auto modified = *blob;
    modified.bytes[pos] ^= mask;
    expect_tampered(open(f.key, record, modified), "bit flipped at byte " + std::to_string(pos));
  }
}

TEST(sealing, truncated_blob_is_reported_as_tampering) {
  sealing_fixture f;
  auto blob = seal(f.key, record, to_secret(password));
  ASSERT_TRUE(blob);
  for (size_t keep : {blob->bytes.size() - 1, size_t{29}, size_t{28}, size_t{13}, size_t{0}}) {
    auto cut = *blob;
    cut.bytes.resize(keep);
    expect_tampered(open(f.key, record, cut), "truncated to " + std::to_string(keep));
  }
}

TEST(sealing, blob_copied_to_another_record_does_not_open) {
  sealing_fixture f;
  auto blob = seal(f.key, "server/backup-08", to_secret(password));
  ASSERT_TRUE(blob);
  expect_tampered(open(f.key, record, *blob), "opened under another record id");
}

TEST(sealing, blob_sealed_under_another_master_key_does_not_open) {
  sealing_fixture f;
  sealing_fixture other;
  auto blob = seal(other.key, record, to_secret(password));
  ASSERT_TRUE(blob);
  expect_tampered(open(f.key, record, *blob), "opened under another master key");
}

TEST(master_key, create_writes_a_private_32_byte_file_that_loads_back) {
  sealing_fixture f;
  EXPECT_EQ(mode_of(f.key_file), 0600u);
  EXPECT_EQ(std::filesystem::file_size(f.key_file), 32u);
  auto loaded = master_key::load(f.key_file);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(loaded->bytes(), f.key.bytes());

  auto blob = seal(f.key, record, to_secret(password));
  ASSERT_TRUE(blob);
  auto opened = open(*loaded, record, *blob);
  ASSERT_TRUE(opened) << describe(opened.error());
}

TEST(master_key, create_refuses_to_replace_an_existing_key) {
  sealing_fixture f;
  auto again = master_key::create(f.key_file);
  ASSERT_FALSE(again);
  EXPECT_EQ(code_of(again.error()), ec::already_exists);
  auto loaded = master_key::load(f.key_file);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->bytes(), f.key.bytes());
}

TEST(master_key, key_file_readable_by_others_is_refused) {
  sealing_fixture f;
  ASSERT_EQ(::chmod(f.key_file.c_str(), 0644), 0);
  auto loaded = master_key::load(f.key_file);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(code_of(loaded.error()), ec::insecure_permissions);
  auto message = describe(loaded.error());
  EXPECT_NE(message.find(f.key_file.string()), std::string::npos) << message;
  EXPECT_NE(message.find("chmod 600"), std::string::npos) << message;
}

TEST(master_key, key_file_of_the_wrong_size_is_corrupt_data) {
  temp_dir tmp;
  for (size_t size : {size_t{0}, size_t{31}, size_t{33}}) {
    auto file = tmp.path() / ("key" + std::to_string(size));
    std::string bytes(size, 'k');
    ASSERT_FALSE(write_file_atomically(file, bytes.data(), bytes.size(), 0600));
    auto loaded = master_key::load(file);
    ASSERT_FALSE(loaded) << size;
    EXPECT_EQ(code_of(loaded.error()), ec::corrupt_data) << size;
    EXPECT_NE(describe(loaded.error()).find(std::to_string(size) + " bytes, not 32"),
              std::string::npos)
        << describe(loaded.error());
  }
}

TEST(master_key, missing_key_file_is_not_found) {
  temp_dir tmp;
  auto loaded = master_key::load(tmp.path() / "absent.key");
  ASSERT_FALSE(loaded);
  EXPECT_EQ(code_of(loaded.error()), ec::not_found);
}

}  // namespace
}  // namespace certfleet
