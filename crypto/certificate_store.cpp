#include "crypto/certificate_store.hpp"

#include <botan/mem_ops.h>

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <set>
#include <system_error>
#include <vector>

namespace certfleet {
namespace {

constexpr const char* current_pointer = "current";
constexpr const char* previous_pointer = "previous";
constexpr mode_t key_mode = 0600;
constexpr mode_t public_mode = 0644;
constexpr mode_t dir_mode = 0700;
constexpr mode_t group_key_mode = 0640;
constexpr mode_t group_dir_mode = 0750;

using group_access = certificate_store::group_access;

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

caf::expected<group_access> resolve_group(const std::string& name) {
  if (name.empty()) return group_access{};
  std::vector<char> buf(16384);
  struct group gr {};
  struct group* found = nullptr;
  int rc = ::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found);
  if (rc != 0 || found == nullptr)
    return make_error(ec::bad_config, "identity.store_group names group '" + name +
                                          "', which does not exist on this system; create it "
                                          "(groupadd) or correct the setting");
  return group_access{name, found->gr_gid};
}

// With a store group, the one widening accepted: exactly `allowed` group bits, with that group.
caf::error check_group_access(const std::filesystem::path& path, const group_access& group,
                              mode_t allowed, const char* fix_mode) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return make_error(ec::not_found, path.string() + " does not exist");
    return make_error(ec::io_error, "cannot stat " + path.string() + ": " + errno_text(errno));
  }
  if (st.st_uid != ::geteuid())
    return make_error(ec::insecure_permissions,
                      path.string() + " is owned by uid " + std::to_string(st.st_uid) +
                          ", not by the service account (uid " + std::to_string(::geteuid()) +
                          "); run chown on it");
  auto group_bits = st.st_mode & S_IRWXG;
  bool bad = (st.st_mode & S_IRWXO) != 0 || (group_bits & ~allowed) != 0 ||
             (group_bits != 0 && st.st_gid != group.gid);
  if (bad)
    return make_error(ec::insecure_permissions,
                      path.string() + " has mode " + octal(st.st_mode) + " and group id " +
                          std::to_string(st.st_gid) + "; only the owner and the store group '" +
                          group.name + "' may have access: run chgrp " + group.name + " " +
                          path.string() + " and chmod " + fix_mode + " " + path.string());
  return {};
}

caf::error check_directory(const std::filesystem::path& dir, const group_access& group) {
  if (!group.set()) return check_private_directory(dir);
  return check_group_access(dir, group, S_IRGRP | S_IXGRP, "750");
}

caf::error check_key_file(const std::filesystem::path& file, const group_access& group) {
  if (!group.set()) return check_private_file(file);
  return check_group_access(file, group, S_IRGRP, "640");
}

// Hands `path` to the store group with `mode`; the group is set before the mode widens.
caf::error share_with_group(const std::filesystem::path& path, const group_access& group,
                            mode_t mode) {
  if (!group.set()) return {};
  if (::chown(path.c_str(), static_cast<uid_t>(-1), group.gid) != 0 ||
      ::chmod(path.c_str(), mode) != 0)
    return make_error(ec::io_error, "cannot give " + path.string() + " to group '" + group.name +
                                        "': " + errno_text(errno));
  return {};
}

bool is_hex_serial(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

// The serial a pointer file names; `ec::not_found` when the pointer does not exist.
caf::expected<std::string> read_pointer(const std::filesystem::path& dir, const char* name) {
  auto path = dir / name;
  auto bytes = read_file(path);
  if (!bytes) return std::move(bytes.error());
  auto serial = trim(std::string(bytes->begin(), bytes->end()));
  if (!is_hex_serial(serial))
    return make_error(ec::corrupt_data, path.string() +
                                            " does not hold a certificate serial number; "
                                            "restore the store from a backup or re-initialise it");
  return serial;
}

caf::error write_text(const std::filesystem::path& path, const std::string& text, mode_t mode,
                      const fs_hooks& hooks = {}) {
  return write_file_atomically(path, text.data(), text.size(), mode, hooks);
}

// Files this store writes: "<hex>.key|crt|name" and the temporaries write_file_atomically leaves
// behind after a crash ("<name>.tmp.<hex>"). Anything else in the directory is not ours to delete.
bool is_store_file(const std::string& name, std::string& serial) {
  auto tmp = name.find(".tmp.");
  if (tmp != std::string::npos) {
    serial.clear();
    return true;
  }
  auto dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  auto ext = name.substr(dot + 1);
  if (ext != "key" && ext != "crt" && ext != "name") return false;
  serial = name.substr(0, dot);
  return is_hex_serial(serial);
}

}  // namespace

caf::expected<certificate_store> certificate_store::open(const std::filesystem::path& dir,
                                                         bool create, const std::string& group) {
  auto access = resolve_group(group);
  if (!access) return access.error();
  std::error_code err;
  bool exists = std::filesystem::exists(dir, err);
  if (err)
    return make_error(ec::io_error,
                      "cannot inspect certificate store " + dir.string() + ": " + err.message());
  if (!exists) {
    if (!create)
      return make_error(ec::not_found, "certificate store " + dir.string() +
                                           " does not exist; initialise the state directory first");
    if (auto e = ensure_directory(dir, dir_mode)) return e;
    if (auto e = share_with_group(dir, *access, group_dir_mode)) return e;
  }
  if (auto e = check_directory(dir, *access)) return e;
  return certificate_store{dir, std::move(*access)};
}

bool certificate_store::has_current() const {
  std::error_code err;
  return std::filesystem::exists(dir_ / current_pointer, err);
}

namespace {

caf::expected<identity> load_serial(const std::filesystem::path& dir, const group_access& group,
                                    const std::string& serial) {
  if (auto e = check_directory(dir, group)) return e;
  auto key_path = dir / (serial + ".key");
  if (auto e = check_key_file(key_path, group)) return e;
  auto key = read_file(key_path);
  if (!key) return std::move(key.error());
  secret_bytes key_pem(key->begin(), key->end());
  Botan::secure_scrub_memory(key->data(), key->size());
  auto cert = read_file(dir / (serial + ".crt"));
  if (!cert) return std::move(cert.error());
  std::string name;
  if (auto n = read_file(dir / (serial + ".name")))
    name.assign(n->begin(), n->end());
  else if (code_of(n.error()) != ec::not_found)
    return std::move(n.error());
  auto id = identity::from_pem(key_pem, std::string(cert->begin(), cert->end()), std::move(name));
  if (!id)
    return make_error(ec::corrupt_data, "identity " + serial + " in " + dir.string() +
                                            " cannot be loaded: " + describe(id.error()));
  return id;
}

}  // namespace

caf::expected<identity> certificate_store::load_current() const {
  auto serial = read_pointer(dir_, current_pointer);
  if (!serial) {
    if (code_of(serial.error()) == ec::not_found)
      return make_error(ec::not_found, "no identity is installed in certificate store " +
                                           dir_.string() + "; generate one first");
    return std::move(serial.error());
  }
  return load_serial(dir_, group_, *serial);
}

caf::expected<std::optional<identity>> certificate_store::load_previous() const {
  auto serial = read_pointer(dir_, previous_pointer);
  if (!serial) {
    if (code_of(serial.error()) == ec::not_found) return std::optional<identity>{};
    return std::move(serial.error());
  }
  auto id = load_serial(dir_, group_, *serial);
  if (!id) return std::move(id.error());
  return std::optional<identity>{std::move(*id)};
}

caf::error certificate_store::install(const identity& id, const fs_hooks& hooks) {
  if (auto e = check_directory(dir_, group_)) return e;
  auto serial = id.summary().serial;
  auto base = dir_ / serial;

  auto key_pem = id.private_key_pem();
  if (auto e =
          write_file_atomically(base.string() + ".key", key_pem.data(), key_pem.size(), key_mode))
    return e;
  if (auto e = share_with_group(base.string() + ".key", group_, group_key_mode)) return e;
  if (auto e = write_text(base.string() + ".crt", id.certificate_pem(), public_mode)) return e;
  if (auto e = write_text(base.string() + ".name", id.friendly_name(), public_mode)) return e;

  auto old_current = read_pointer(dir_, current_pointer);
  if (!old_current && code_of(old_current.error()) != ec::not_found)
    return std::move(old_current.error());
  std::string previous;
  if (old_current && *old_current != serial) {
    previous = *old_current;
  } else if (auto old_previous = read_pointer(dir_, previous_pointer)) {
    // Re-installing the current identity keeps the existing previous one.
    previous = *old_previous;
  }

  // `previous` moves first: a failure between the two writes leaves previous == current, which
  // loads fine; the other order could leave the replaced identity named by no pointer.
  if (!previous.empty())
    if (auto e = write_text(dir_ / previous_pointer, previous + "\n", public_mode, hooks)) return e;
  if (auto e = write_text(dir_ / current_pointer, serial + "\n", public_mode, hooks)) return e;

  std::set<std::string> keep{serial};
  if (!previous.empty()) keep.insert(previous);
  std::error_code err;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, err)) {
    std::string file_serial;
    auto name = entry.path().filename().string();
    if (!is_store_file(name, file_serial) || keep.count(file_serial)) continue;
    // A file that cannot be removed now is retried by the next install; the new identity is
    // already in place, so this is not a failure of this one.
    std::error_code ignored;
    std::filesystem::remove(entry.path(), ignored);
  }
  return sync_directory(dir_);
}

}  // namespace certfleet
