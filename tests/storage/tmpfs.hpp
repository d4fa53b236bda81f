// A real, tiny file system for storage tests: a tmpfs mounted on a fresh temporary directory, so a
// test can fill the disk the store writes to and free it again. Mounting needs root (CI runs as
// root); where it is not allowed the fixture reports why and the test skips itself.
//
// Thread-safety: one test thread owns a mount.
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/temp_dir.hpp"

namespace certfleet::test {

class tmpfs_mount {
 public:
  /// Mounts a tmpfs of `size` (a tmpfs size option, "4m") on a new temporary directory. Check
  /// `mounted()`; `why_not()` says what failed.
  explicit tmpfs_mount(const std::string& size) {
    if (::geteuid() != 0) {
      why_not_ = "mounting a tmpfs needs root";
      return;
    }
    auto opts = "size=" + size + ",mode=0700";
    if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      why_not_ = std::string("mount -t tmpfs failed: ") + std::strerror(errno);
      return;
    }
    mounted_ = true;
  }
  ~tmpfs_mount() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  tmpfs_mount(const tmpfs_mount&) = delete;
  tmpfs_mount& operator=(const tmpfs_mount&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& why_not() const { return why_not_; }
  const std::filesystem::path& path() const { return dir_.path(); }

  /// Bytes an unprivileged writer may still use.
  uint64_t free_bytes() const {
    struct statvfs v {};
    if (::statvfs(dir_.path().c_str(), &v) != 0) return 0;
    return static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  }

  /// Writes a filler file until the file system refuses with ENOSPC; returns its size.
  uint64_t fill() {
    auto file = dir_.path() / ("filler-" + std::to_string(fillers_++));
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return 0;
    std::vector<char> block(4096, 'f');
    uint64_t total = 0;
    for (;;) {
      auto n = ::write(fd, block.data(), block.size());
      if (n <= 0) break;
      total += static_cast<uint64_t>(n);
    }
    ::close(fd);
    return total;
  }

  /// Deletes every filler file written by `fill`.
  void release() {
    for (int i = 0; i < fillers_; ++i) {
      std::error_code ignored;
      std::filesystem::remove(dir_.path() / ("filler-" + std::to_string(i)), ignored);
    }
    fillers_ = 0;
  }

 private:
  temp_dir dir_;
  bool mounted_ = false;
  std::string why_not_;
  int fillers_ = 0;
};

}  // namespace certfleet::test
