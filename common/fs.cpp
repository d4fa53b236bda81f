#include "common/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

namespace certfleet {
namespace {

caf::error io_failure(const std::string& action, const std::filesystem::path& path, int err) {
  auto code = err == ENOSPC || err == EDQUOT ? ec::disk_full : ec::io_error;
  std::string hint = code == ec::disk_full ? "; free space on that file system and retry" : "";
  return make_error(code, "cannot " + action + " " + path.string() + ": " + errno_text(err) + hint);
}

class fd_guard {
 public:
  explicit fd_guard(int fd) : fd_(fd) {}
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

std::string temp_suffix() {
  std::random_device rd;
  char buf[32];
  std::snprintf(buf, sizeof(buf), ".tmp.%08x", rd());
  return buf;
}

}  // namespace

std::string errno_text(int err) {
  return std::strerror(err);
}

caf::error sync_directory(const std::filesystem::path& dir) {
  fd_guard fd{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (fd.get() < 0) return io_failure("open directory", dir, errno);
  if (::fsync(fd.get()) != 0) return io_failure("sync directory", dir, errno);
  return {};
}

caf::error write_file_atomically(const std::filesystem::path& path, const void* data, size_t size,
                                 mode_t mode, const fs_hooks& hooks) {
  auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path{"."};
  auto tmp = path;
  tmp += temp_suffix();
  fd_guard fd{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)};
  if (fd.get() < 0) return io_failure("create", tmp, errno);
  auto fail = [&](const std::string& action, const std::filesystem::path& p, int err) {
    ::unlink(tmp.c_str());
    return io_failure(action, p, err);
  };
  // The umask may have narrowed `mode`; a key must not end up wider than asked, nor narrower.
  if (::fchmod(fd.get(), mode) != 0) return fail("set permissions on", tmp, errno);
  auto* p = static_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    auto n = ::write(fd.get(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write", tmp, errno);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("sync", tmp, errno);
  if (::close(fd.release()) != 0) return fail("close", tmp, errno);
  int rc =
      hooks.rename ? hooks.rename(tmp.c_str(), path.c_str()) : ::rename(tmp.c_str(), path.c_str());
  if (rc != 0) return fail("rename a temporary file over", path, errno);
  return sync_directory(dir);
}

caf::expected<std::vector<uint8_t>> read_file(const std::filesystem::path& path) {
  fd_guard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.get() < 0) {
    if (errno == ENOENT) return make_error(ec::not_found, path.string() + " does not exist");
    return io_failure("open", path, errno);
  }
  std::vector<uint8_t> out;
  uint8_t buf[8192];
  for (;;) {
    auto n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_failure("read", path, errno);
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  return out;
}

caf::error ensure_directory(const std::filesystem::path& dir, mode_t mode) {
  std::error_code err;
  std::filesystem::create_directories(dir, err);
  if (err) return io_failure("create directory", dir, err.value());
  if (::chmod(dir.c_str(), mode) != 0) return io_failure("set permissions on", dir, errno);
  return {};
}

caf::error check_private_file(const std::filesystem::path& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return make_error(ec::not_found, path.string() + " does not exist");
    return io_failure("stat", path, errno);
  }
  if (st.st_uid != ::geteuid())
    return make_error(ec::insecure_permissions,
                      path.string() + " is owned by uid " + std::to_string(st.st_uid) +
                          ", not by the service account (uid " + std::to_string(::geteuid()) +
                          "); run chown on it");
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    std::string who = (st.st_mode & S_IRWXG) ? "group" : "others";
    return make_error(ec::insecure_permissions, path.string() + " has mode " + mode +
                                                    " and is accessible by " + who +
                                                    "; run chmod 600 " + path.string());
  }
  return {};
}

caf::error check_private_directory(const std::filesystem::path& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return make_error(ec::not_found, dir.string() + " does not exist");
    return io_failure("stat", dir, errno);
  }
  if (!S_ISDIR(st.st_mode))
    return make_error(ec::invalid_argument, dir.string() + " is not a directory");
  if (st.st_uid != ::geteuid())
    return make_error(ec::insecure_permissions,
                      dir.string() + " is owned by uid " + std::to_string(st.st_uid) +
                          ", not by the service account; run chown on it");
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    std::string who = (st.st_mode & S_IWGRP) ? "group" : "others";
    return make_error(ec::insecure_permissions, "directory " + dir.string() + " is writable by " +
                                                    who + "; run chmod 700 " + dir.string());
  }
  return {};
}

}  // namespace certfleet
