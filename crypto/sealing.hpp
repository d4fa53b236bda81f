// Sealed secrets: credentials are stored only as AEAD ciphertext (AES-256-GCM) under a 256-bit
// master key, with the owning record's id as associated data, so a blob copied to another record
// fails to open.
//
// The master key lives in its own file (mode 0600) in the state dir, never in the database.
// Blob format: version byte (1) | 12-byte random nonce | ciphertext | 16-byte tag.
//
// Thread-safety: `master_key` is immutable after load and safe to share; `seal`/`open` are
// reentrant (they use the thread-safe system RNG).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "crypto/secret.hpp"

namespace certfleet {

class master_key {
 public:
  /// Creates a new random key file (mode 0600). `ec::already_exists` if the file exists.
  static caf::expected<master_key> create(const std::filesystem::path& file);
  /// Loads the key; refuses a file group or others can access (`ec::insecure_permissions`), a file
  /// of the wrong size (`ec::corrupt_data`) or a missing one (`ec::not_found`).
  static caf::expected<master_key> load(const std::filesystem::path& file);

  const secret_bytes& bytes() const { return key_; }

  /// A public name of this key: 32 hex digits of HMAC-SHA256(key, "certfleet master key id").
  /// Stored beside the data sealed under the key, it tells a wrong key from tampered data before
  /// anything is opened; it reveals nothing about the key.
  std::string id() const;

 private:
  explicit master_key(secret_bytes key) : key_(std::move(key)) {}
  secret_bytes key_;
};

/// Opaque ciphertext, safe to store.
struct sealed_blob {
  std::vector<uint8_t> bytes;
};

/// Encrypts `plaintext` bound to `record_id`.
caf::expected<sealed_blob> seal(const master_key& key, std::string_view record_id,
                                const secret_bytes& plaintext);

/// Decrypts; fails with `ec::tampered` (naming the record) when the blob was modified, truncated,
/// sealed under another key, or belongs to another record. Never returns garbage.
caf::expected<secret_bytes> open(const master_key& key, std::string_view record_id,
                                 const sealed_blob& blob);

}  // namespace certfleet
