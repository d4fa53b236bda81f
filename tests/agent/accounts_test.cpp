#include "agent/accounts.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "crypto/password_hash.hpp"
#include "tests/agent/test_support.hpp"

namespace certfleet::agent {
namespace {

using certfleet::testing::temp_dir;

TEST(account_book, saves_with_mode_0600_and_loads_back_names_roles_and_hashes) {
  temp_dir dir;
  account_book book;
  ASSERT_FALSE(book.put({"alice", role::administrator, "$argon2id$x"}));
  ASSERT_FALSE(book.put({"bob", role::viewer, "$argon2id$y"}));
  auto path = dir.path() / "accounts.json";
  ASSERT_FALSE(book.save(path));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = account_book::load(path);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  ASSERT_NE(loaded->find("alice"), nullptr);
  EXPECT_EQ(loaded->find("alice")->role, role::administrator);
  EXPECT_EQ(loaded->find("bob")->password_hash, "$argon2id$y");
  EXPECT_EQ(loaded->find("carol"), nullptr);
}

TEST(account_book, refuses_a_file_that_group_or_others_can_read) {
  temp_dir dir;
  auto path = dir.path() / "accounts.json";
  ASSERT_FALSE(account_book{}.save(path));
  ::chmod(path.c_str(), 0644);
  auto loaded = account_book::load(path);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(code_of(loaded.error()), ec::insecure_permissions);
  EXPECT_NE(describe(loaded.error()).find("chmod"), std::string::npos);
}

TEST(account_book, refuses_malformed_json_naming_the_file) {
  auto bad = account_book::from_json("{\"version\": 1, \"accounts\": [{\"name\": \"x\"}]}",
                                     "/etc/agent/accounts.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(code_of(bad.error()), ec::corrupt_data);
  EXPECT_NE(describe(bad.error()).find("/etc/agent/accounts.json"), std::string::npos);
  EXPECT_FALSE(account_book::from_json("[]", "x"));
  EXPECT_FALSE(account_book::from_json(
      R"({"version":1,"accounts":[{"name":"a","role":"root","password_hash":"h"}]})", "x"));
}

TEST(account_book, remove_of_an_unknown_account_is_not_found) {
  account_book book;
  EXPECT_EQ(code_of(book.remove("nobody")), ec::not_found);
}

}  // namespace
}  // namespace certfleet::agent
