// Test support: a private scratch directory that every test suite shares.
//
// `temp_dir` creates a fresh directory under /tmp with mkdtemp (so mode 0700, a name no other test
// can collide with) and removes it with its contents when destroyed. It owns the directory; it is
// neither copyable nor movable, so exactly one object cleans up. path() may be read from any
// thread; destroy it only after every user of the directory is done. If mkdtemp fails (no /tmp, no
// space) the constructor throws std::system_error, which GoogleTest reports as the test's failure;
// removal errors on destruction are ignored so a test's own failure stays the one reported.
#pragma once

#include <filesystem>
#include <string>

namespace certfleet::test {

/// A fresh directory under /tmp, mode 0700, removed with its contents on destruction.
class temp_dir {
 public:
  /// Creates /tmp/<prefix>-XXXXXX.
  explicit temp_dir(const std::string& prefix = "certfleet-test");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace certfleet::test
