// The accounts of one backup-server endpoint: user names, roles and salted slow password hashes
// (crypto/password_hash.hpp). Only a Backup Administrator may register a manager.
//
// On disk (single agent: <state>/accounts.json) the book is JSON, mode 0600, written atomically:
//   {"version": 1, "accounts": [{"name": "alice", "role": "administrator",
//                                "password_hash": "$argon2id$v=19$..."}]}
// Loading refuses a file that group or others can read (`check_private_file`), as ssh does for
// keys, and a file that does not parse, naming the file. Fleet endpoints keep the same JSON in the
// agent store instead of a file (see storage/agent_store.hpp).
//
// Thread-safety: a plain value; not synchronised.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "crypto/secret.hpp"

namespace certfleet::agent {

enum class role { administrator, viewer };

/// "administrator" / "viewer", the CLI spelling.
const char* to_string(role r);
/// "Backup Administrator" / "Backup Viewer", the product's spelling, for messages.
const char* display_name(role r);
/// Parses "administrator" or "viewer"; `ec::invalid_argument` otherwise.
caf::expected<role> parse_role(const std::string& text);

struct account {
  std::string name;
  agent::role role = role::viewer;
  std::string password_hash;  // PHC string; never the password
};

class account_book {
 public:
  /// Reads and checks a book file; `ec::not_found`, `ec::insecure_permissions` or
  /// `ec::corrupt_data` (naming the file) on failure.
  static caf::expected<account_book> load(const std::filesystem::path& path);
  /// Parses the JSON form; `ec::corrupt_data` naming `origin` on failure.
  static caf::expected<account_book> from_json(const std::string& text, const std::string& origin);

  std::string to_json() const;
  /// Writes the book atomically with mode 0600.
  caf::error save(const std::filesystem::path& path) const;

  /// Adds or replaces `a`; `ec::invalid_argument` for an empty or over-long name (256 bytes).
  caf::error put(account a);
  /// Removes the account; `ec::not_found` when there is none.
  caf::error remove(const std::string& name);
  const account* find(const std::string& name) const;
  /// The account `name` when `password` is its password, nullptr for an unknown name or a wrong
  /// password; `ec::corrupt_data` when the stored hash is malformed. An unknown name costs the
  /// same hash work as a wrong password (the password is checked against the first account's
  /// hash, with its parameters, and the result thrown away), so timing does not tell which names
  /// exist.
  caf::expected<const account*> check_password(const std::string& name,
                                               const secret_bytes& password) const;
  /// How many password hashes `check_password` computed, for tests.
  uint64_t hashes_computed() const { return hashes_computed_; }
  const std::vector<account>& accounts() const { return accounts_; }

 private:
  std::vector<account> accounts_;
  mutable uint64_t hashes_computed_ = 0;
};

}  // namespace certfleet::agent
