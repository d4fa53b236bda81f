// The certificate store: a directory only the service account can read, holding the current
// identity and the one it replaced (renewal needs both).
//
// Layout under `dir` (mode 0700):
//   <serial>.key   PKCS#8 PEM private key, mode 0600
//   <serial>.crt   PEM certificate, mode 0644
//   <serial>.name  the friendly name, mode 0644
//   current, previous   pointer files holding a serial, replaced atomically
// A new identity's files are written (each atomically) before the `current` pointer moves, so a
// crash at any point leaves the old identity loadable; files no pointer names are removed by the
// next successful `install`.
//
// Loading refuses a key file that group or others can access, or a store directory group or others
// can write, naming the file and the fix, as ssh does. One widening may be configured: a store
// group (an administrators group): key files are then 0640 and the directory 0750, both with that
// group, and exactly that is accepted besides the private modes; any other group, or any access for
// others, is still refused.
//
// Thread-safety: not synchronised; one writer per store (the daemon, or one CLI command).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <sys/types.h>

#include "common/error.hpp"
#include "common/fs.hpp"
#include "crypto/identity.hpp"

namespace certfleet {

class certificate_store {
 public:
  /// Opens the store at `dir`, creating it with mode 0700 when `create` is true and it is missing.
  /// Fails with `ec::not_found` when missing and not created, `ec::insecure_permissions` when the
  /// directory is group- or world-writable.
  /// With a non-empty `group` (`identity.store_group`), the store may be read by that group as
  /// described above, and what it creates or installs is given to it; `ec::bad_config` when no such
  /// group exists.
  static caf::expected<certificate_store> open(const std::filesystem::path& dir, bool create,
                                               const std::string& group = {});

  /// True when a current identity is installed.
  bool has_current() const;

  /// Loads the current identity; `ec::not_found` when none, `ec::insecure_permissions` for an
  /// exposed key file, `ec::corrupt_data` for unreadable PEM.
  caf::expected<identity> load_current() const;

  /// Loads the identity that `current` replaced, if any.
  caf::expected<std::optional<identity>> load_previous() const;

  /// Installs `id` as current; the old current becomes previous. Atomic as described above.
  /// `hooks` lets tests make the pointer rename fail.
  caf::error install(const identity& id, const fs_hooks& hooks = {});

  const std::filesystem::path& dir() const { return dir_; }

  /// The store group (see `open`), empty when none.
  struct group_access {
    std::string name;
    gid_t gid = 0;
    bool set() const { return !name.empty(); }
  };

 private:
  certificate_store(std::filesystem::path dir, group_access group)
      : dir_(std::move(dir)), group_(std::move(group)) {}
  std::filesystem::path dir_;
  group_access group_;
};

}  // namespace certfleet
