#include "crypto/certificate_store.hpp"

#include <botan/mem_ops.h>

#include <cctype>
#include <set>
#include <system_error>

namespace certfleet {
namespace {

constexpr const char* current_pointer = "current";
constexpr const char* previous_pointer = "previous";
constexpr mode_t key_mode = 0600;
constexpr mode_t public_mode = 0644;
constexpr mode_t dir_mode = 0700;

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
                                                         bool create) {
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
  }
  if (auto e = check_private_directory(dir)) return e;
  return certificate_store{dir};
}

bool certificate_store::has_current() const {
  std::error_code err;
  return std::filesystem::exists(dir_ / current_pointer, err);
}

namespace {

caf::expected<identity> load_serial(const std::filesystem::path& dir, const std::string& serial) {
  if (auto e = check_private_directory(dir)) return e;
  auto key_path = dir / (serial + ".key");
  if (auto e = check_private_file(key_path)) return e;
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
  return load_serial(dir_, *serial);
}

caf::expected<std::optional<identity>> certificate_store::load_previous() const {
  auto serial = read_pointer(dir_, previous_pointer);
  if (!serial) {
    if (code_of(serial.error()) == ec::not_found) return std::optional<identity>{};
    return std::move(serial.error());
  }
  auto id = load_serial(dir_, *serial);
  if (!id) return std::move(id.error());
  return std::optional<identity>{std::move(*id)};
}

caf::error certificate_store::install(const identity& id, const fs_hooks& hooks) {
  if (auto e = check_private_directory(dir_)) return e;
  auto serial = id.summary().serial;
  auto base = dir_ / serial;

  auto key_pem = id.private_key_pem();
  if (auto e =
          write_file_atomically(base.string() + ".key", key_pem.data(), key_pem.size(), key_mode))
    return e;
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
