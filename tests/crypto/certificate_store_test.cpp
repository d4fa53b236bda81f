#include "crypto/certificate_store.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "tests/crypto/test_support.hpp"

namespace certfleet {
namespace {

using certfleet::testing::mode_of;
using certfleet::testing::temp_dir;
using certfleet::testing::write_text_file;

identity make_identity(const std::string& name) {
  auto id =
      identity::generate({"manager.example.net", "Acme Backup Ltd"}, std::chrono::hours{24}, name);
  EXPECT_TRUE(id) << describe(id.error());
  return std::move(*id);
}

std::set<std::string> files_in(const std::filesystem::path& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    out.insert(e.path().filename().string());
  return out;
}

// A fresh store at <tmp>/certs, created by open().
struct store_fixture {
  temp_dir tmp;
  std::filesystem::path dir = tmp.path() / "certs";
  certificate_store store = [this] {
    auto s = certificate_store::open(dir, true);
    EXPECT_TRUE(s) << describe(s.error());
    return std::move(*s);
  }();
};

TEST(certificate_store, open_creates_a_private_directory) {
  store_fixture f;
  EXPECT_EQ(mode_of(f.dir), 0700u);
  EXPECT_FALSE(f.store.has_current());
}

TEST(certificate_store, open_without_create_reports_a_missing_store) {
  temp_dir tmp;
  auto s = certificate_store::open(tmp.path() / "absent", false);
  ASSERT_FALSE(s);
  EXPECT_EQ(code_of(s.error()), ec::not_found);
}

TEST(certificate_store, load_current_of_an_empty_store_is_not_found) {
  store_fixture f;
  auto id = f.store.load_current();
  ASSERT_FALSE(id);
  EXPECT_EQ(code_of(id.error()), ec::not_found);
  auto prev = f.store.load_previous();
  ASSERT_TRUE(prev) << describe(prev.error());
  EXPECT_FALSE(prev->has_value());
}

TEST(certificate_store, install_writes_files_with_the_documented_modes_and_loads_back) {
  store_fixture f;
  auto id = make_identity("manager");
  ASSERT_FALSE(f.store.install(id));
  auto serial = id.summary().serial;
  EXPECT_EQ(mode_of(f.dir / (serial + ".key")), 0600u);
  EXPECT_EQ(mode_of(f.dir / (serial + ".crt")), 0644u);
  EXPECT_EQ(mode_of(f.dir / (serial + ".name")), 0644u);
  EXPECT_EQ(files_in(f.dir),
            (std::set<std::string>{serial + ".key", serial + ".crt", serial + ".name", "current"}));
  EXPECT_TRUE(f.store.has_current());

  auto loaded = f.store.load_current();
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(loaded->sha256(), id.sha256());
  EXPECT_EQ(loaded->friendly_name(), "manager");
  auto prev = f.store.load_previous();
  ASSERT_TRUE(prev);
  EXPECT_FALSE(prev->has_value());
}

TEST(certificate_store, second_install_makes_the_first_identity_previous) {
  store_fixture f;
  auto first = make_identity("first");
  auto second = make_identity("second");
  ASSERT_FALSE(f.store.install(first));
  ASSERT_FALSE(f.store.install(second));

  auto current = f.store.load_current();
  ASSERT_TRUE(current) << describe(current.error());
  EXPECT_EQ(current->sha256(), second.sha256());
  auto previous = f.store.load_previous();
  ASSERT_TRUE(previous) << describe(previous.error());
  ASSERT_TRUE(previous->has_value());
  EXPECT_EQ((*previous)->sha256(), first.sha256());
  EXPECT_EQ((*previous)->friendly_name(), "first");
}

TEST(certificate_store, third_install_removes_files_no_pointer_names) {
  store_fixture f;
  auto first = make_identity("first");
  auto second = make_identity("second");
  auto third = make_identity("third");
  ASSERT_FALSE(f.store.install(first));
  ASSERT_FALSE(f.store.install(second));
  ASSERT_FALSE(f.store.install(third));
  auto s2 = second.summary().serial;
  auto s3 = third.summary().serial;
  EXPECT_EQ(files_in(f.dir),
            (std::set<std::string>{s2 + ".key", s2 + ".crt", s2 + ".name", s3 + ".key", s3 + ".crt",
                                   s3 + ".name", "current", "previous"}));
}

TEST(certificate_store, failed_pointer_rename_leaves_the_first_identity_current_and_loadable) {
  store_fixture f;
  auto first = make_identity("first");
  ASSERT_FALSE(f.store.install(first));

  fs_hooks failing_current;
  failing_current.rename = [](const char* from, const char* to) {
    if (std::filesystem::path{to}.filename() == "current") {
      errno = EIO;
      return -1;
    }
    return std::rename(from, to);
  };
  auto second = make_identity("second");
  auto err = f.store.install(second, failing_current);
  ASSERT_TRUE(err);
  EXPECT_EQ(code_of(err), ec::io_error);
  EXPECT_NE(describe(err).find("current"), std::string::npos) << describe(err);

  auto loaded = f.store.load_current();
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(loaded->sha256(), first.sha256());
  EXPECT_EQ(loaded->friendly_name(), "first");

  // And a store reopened from disk, as after a restart, agrees.
  auto reopened = certificate_store::open(f.dir, false);
  ASSERT_TRUE(reopened) << describe(reopened.error());
  auto again = reopened->load_current();
  ASSERT_TRUE(again) << describe(again.error());
  EXPECT_EQ(again->sha256(), first.sha256());
}

TEST(certificate_store, key_file_readable_by_others_is_refused_with_the_fix) {
  store_fixture f;
  auto id = make_identity("manager");
  ASSERT_FALSE(f.store.install(id));
  auto key = f.dir / (id.summary().serial + ".key");
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);

  auto loaded = f.store.load_current();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(code_of(loaded.error()), ec::insecure_permissions);
  auto message = describe(loaded.error());
  EXPECT_NE(message.find(key.string()), std::string::npos) << message;
  EXPECT_NE(message.find("chmod 600"), std::string::npos) << message;
}

TEST(certificate_store, group_writable_store_directory_is_refused_with_the_fix) {
  store_fixture f;
  auto id = make_identity("manager");
  ASSERT_FALSE(f.store.install(id));
  ASSERT_EQ(::chmod(f.dir.c_str(), 0770), 0);

  auto loaded = f.store.load_current();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(code_of(loaded.error()), ec::insecure_permissions);
  EXPECT_NE(describe(loaded.error()).find("chmod 700"), std::string::npos)
      << describe(loaded.error());

  auto reopened = certificate_store::open(f.dir, false);
  ASSERT_FALSE(reopened);
  EXPECT_EQ(code_of(reopened.error()), ec::insecure_permissions);
  EXPECT_NE(describe(reopened.error()).find(f.dir.string()), std::string::npos);

  EXPECT_EQ(code_of(f.store.install(make_identity("other"))), ec::insecure_permissions);
}

TEST(certificate_store, unreadable_certificate_is_corrupt_data) {
  store_fixture f;
  auto id = make_identity("manager");
  ASSERT_FALSE(f.store.install(id));
  write_text_file(f.dir / (id.summary().serial + ".crt"), "-----BEGIN CERTIFICATE-----\ngarbage");
  auto loaded = f.store.load_current();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(code_of(loaded.error()), ec::corrupt_data);
  EXPECT_NE(describe(loaded.error()).find(id.summary().serial), std::string::npos);
}

TEST(certificate_store, reinstalling_the_current_identity_keeps_previous) {
  store_fixture f;
  auto first = make_identity("first");
  auto second = make_identity("second");
  ASSERT_FALSE(f.store.install(first));
  ASSERT_FALSE(f.store.install(second));
  ASSERT_FALSE(f.store.install(second));
  auto previous = f.store.load_previous();
  ASSERT_TRUE(previous && previous->has_value());
  EXPECT_EQ((*previous)->sha256(), first.sha256());
}

}  // namespace
}  // namespace certfleet

namespace certfleet {
namespace {

gid_t group_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return st.st_gid;
}

// Giving files to another group needs root (CI runs as root); `adm` and `daemon` exist on Debian.
#define REQUIRE_ROOT() \
  if (::geteuid() != 0) GTEST_SKIP() << "changing a file's group to another group needs root"

TEST(certificate_store_group, a_store_group_makes_keys_0640_and_the_directory_0750_for_that_group) {
  REQUIRE_ROOT();
  temp_dir tmp;
  auto dir = tmp.path() / "certs";
  auto store = certificate_store::open(dir, true, "adm");
  ASSERT_TRUE(store) << describe(store.error());
  auto id = make_identity("manager");
  ASSERT_FALSE(store->install(id));
  auto key = dir / (id.summary().serial + ".key");
  EXPECT_EQ(mode_of(dir), 0750u);
  EXPECT_EQ(mode_of(key), 0640u);
  EXPECT_EQ(group_of(dir), 4u);
  EXPECT_EQ(group_of(key), 4u);
  auto loaded = store->load_current();
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(loaded->sha256(), id.sha256());
}

TEST(certificate_store_group, any_other_widening_is_refused_naming_the_file_and_the_fix) {
  REQUIRE_ROOT();
  temp_dir tmp;
  auto dir = tmp.path() / "certs";
  auto store = certificate_store::open(dir, true, "adm");
  ASSERT_TRUE(store);
  auto id = make_identity("manager");
  ASSERT_FALSE(store->install(id));
  auto key = dir / (id.summary().serial + ".key");

  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);  // world-readable
  auto loaded = store->load_current();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(code_of(loaded.error()), ec::insecure_permissions);
  EXPECT_NE(describe(loaded.error()).find(key.string()), std::string::npos);
  EXPECT_NE(describe(loaded.error()).find("chmod 640"), std::string::npos);

  ASSERT_EQ(::chmod(key.c_str(), 0640), 0);
  ASSERT_EQ(::chown(key.c_str(), static_cast<uid_t>(-1), 1), 0);  // group daemon, not adm
  loaded = store->load_current();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(code_of(loaded.error()), ec::insecure_permissions);
  EXPECT_NE(describe(loaded.error()).find("chgrp adm"), std::string::npos);

  ASSERT_EQ(::chmod(key.c_str(), 0660), 0);  // group-writable
  ASSERT_EQ(::chown(key.c_str(), static_cast<uid_t>(-1), 4), 0);
  EXPECT_FALSE(store->load_current());

  // Without the setting, the group-readable key is refused as before.
  ASSERT_EQ(::chmod(key.c_str(), 0640), 0);
  auto plain = certificate_store::open(dir, false);
  ASSERT_TRUE(plain) << describe(plain.error());
  EXPECT_EQ(code_of(plain->load_current().error()), ec::insecure_permissions);
}

TEST(certificate_store_group, an_unknown_store_group_is_a_configuration_error) {
  temp_dir tmp;
  auto store = certificate_store::open(tmp.path() / "certs", true, "no-such-group-certfleet");
  ASSERT_FALSE(store);
  EXPECT_EQ(code_of(store.error()), ec::bad_config);
  EXPECT_NE(describe(store.error()).find("identity.store_group"), std::string::npos);
}

}  // namespace
}  // namespace certfleet
