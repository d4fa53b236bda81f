#include "common/fs.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.hpp"

namespace certfleet {
namespace {

using test::temp_dir;

std::string read_string(const std::filesystem::path& p) {
  auto bytes = read_file(p);
  EXPECT_TRUE(bytes) << describe(bytes.error());
  return bytes ? std::string(bytes->begin(), bytes->end()) : std::string{};
}

mode_t mode_of(const std::filesystem::path& p) {
  struct stat st;
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

TEST(atomic_file, writes_content_with_the_requested_mode) {
  temp_dir dir;
  auto file = dir.path() / "secret";
  std::string text = "hello";
  ASSERT_FALSE(write_file_atomically(file, text.data(), text.size(), 0600));
  EXPECT_EQ(read_string(file), "hello");
  EXPECT_EQ(mode_of(file), 0600u);
}

TEST(atomic_file, failed_rename_keeps_the_old_content_and_leaves_no_temp_file) {
  temp_dir dir;
  auto file = dir.path() / "data";
  std::string v1 = "version one";
  ASSERT_FALSE(write_file_atomically(file, v1.data(), v1.size(), 0644));
  fs_hooks failing;
  failing.rename = [](const char*, const char*) {
    errno = EIO;
    return -1;
  };
  std::string v2 = "version two";
  auto err = write_file_atomically(file, v2.data(), v2.size(), 0644, failing);
  ASSERT_TRUE(err);
  EXPECT_EQ(code_of(err), ec::io_error);
  EXPECT_NE(describe(err).find(file.string()), std::string::npos) << describe(err);
  EXPECT_EQ(read_string(file), "version one");
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST(atomic_file, full_disk_is_reported_as_disk_full) {
  temp_dir dir;
  fs_hooks full;
  full.rename = [](const char*, const char*) {
    errno = ENOSPC;
    return -1;
  };
  std::string v = "x";
  auto err = write_file_atomically(dir.path() / "f", v.data(), v.size(), 0600, full);
  EXPECT_EQ(code_of(err), ec::disk_full);
  EXPECT_NE(describe(err).find("free space"), std::string::npos) << describe(err);
}

TEST(private_file, group_readable_file_is_refused_with_the_chmod_fix) {
  temp_dir dir;
  auto file = dir.path() / "key";
  std::string v = "k";
  ASSERT_FALSE(write_file_atomically(file, v.data(), v.size(), 0644));
  auto err = check_private_file(file);
  EXPECT_EQ(code_of(err), ec::insecure_permissions);
  EXPECT_NE(describe(err).find("chmod 600 " + file.string()), std::string::npos) << describe(err);
  ::chmod(file.c_str(), 0600);
  EXPECT_FALSE(check_private_file(file));
}

TEST(private_directory, group_writable_directory_is_refused) {
  temp_dir dir;
  ::chmod(dir.path().c_str(), 0770);
  auto err = check_private_directory(dir.path());
  EXPECT_EQ(code_of(err), ec::insecure_permissions);
  EXPECT_NE(describe(err).find("chmod 700"), std::string::npos) << describe(err);
  ::chmod(dir.path().c_str(), 0700);
  EXPECT_FALSE(check_private_directory(dir.path()));
}

TEST(read_file, missing_file_is_not_found_and_names_the_path) {
  auto r = read_file("/nonexistent/certfleet/file");
  ASSERT_FALSE(r);
  EXPECT_EQ(code_of(r.error()), ec::not_found);
  EXPECT_NE(describe(r.error()).find("/nonexistent/certfleet/file"), std::string::npos);
}

}  // namespace
}  // namespace certfleet
