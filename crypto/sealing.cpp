#include "crypto/sealing.hpp"

#include <botan/aead.h>
#include <botan/exceptn.h>
#include <botan/hex.h>
#include <botan/mac.h>
#include <botan/mem_ops.h>
#include <botan/system_rng.h>

#include "common/fs.hpp"
#include "crypto/botan_secret.hpp"

namespace certfleet {
namespace {

constexpr size_t key_size = 32;
constexpr size_t nonce_size = 12;
constexpr size_t tag_size = 16;
constexpr uint8_t format_version = 1;
constexpr const char* algorithm = "AES-256/GCM";

std::string quoted(std::string_view record_id) {
  return "'" + std::string{record_id} + "'";
}

caf::error tampered(std::string_view record_id, const std::string& what) {
  return make_error(ec::tampered, "the sealed secret of record " + quoted(record_id) + " " + what +
                                      "; it was modified, truncated, sealed under another master "
                                      "key or copied from another record. Re-enter the secret");
}

}  // namespace

caf::expected<master_key> master_key::create(const std::filesystem::path& file) {
  std::error_code err;
  if (std::filesystem::exists(std::filesystem::symlink_status(file, err)))
    return make_error(ec::already_exists,
                      "master key " + file.string() +
                          " already exists; refusing to replace it, as every sealed secret "
                          "depends on it");
  try {
    secret_bytes key(key_size);
    Botan::system_rng().randomize(key.data(), key.size());
    if (auto e = write_file_atomically(file, key.data(), key.size(), 0600)) return e;
    return master_key{std::move(key)};
  } catch (const std::exception& e) {
    return make_error(ec::crypto_failure,
                      std::string{"cannot draw random bytes for a master key: "} + e.what());
  }
}

caf::expected<master_key> master_key::load(const std::filesystem::path& file) {
  if (auto e = check_private_file(file)) return e;
  auto bytes = read_file(file);
  if (!bytes) return std::move(bytes.error());
  secret_bytes key(bytes->begin(), bytes->end());
  Botan::secure_scrub_memory(bytes->data(), bytes->size());
  if (key.size() != key_size)
    return make_error(ec::corrupt_data,
                      "master key " + file.string() + " has " + std::to_string(key.size()) +
                          " bytes, not " + std::to_string(key_size) + "; restore it from a backup");
  return master_key{std::move(key)};
}

std::string master_key::id() const {
  auto mac = Botan::MessageAuthenticationCode::create_or_throw("HMAC(SHA-256)");
  mac->set_key(key_);
  static constexpr char label[] = "certfleet master key id";
  mac->update(reinterpret_cast<const uint8_t*>(label), sizeof label - 1);
  auto tag = mac->final();
  return Botan::hex_encode(tag.data(), 16, false);
}

caf::expected<sealed_blob> seal(const master_key& key, std::string_view record_id,
                                const secret_bytes& plaintext) {
  try {
    auto cipher = Botan::AEAD_Mode::create_or_throw(algorithm, Botan::ENCRYPTION);
    cipher->set_key(key.bytes());
    auto nonce = Botan::system_rng().random_vec(nonce_size);
    cipher->set_associated_data(reinterpret_cast<const uint8_t*>(record_id.data()),
                                record_id.size());
    cipher->start(nonce);
    auto body = to_botan(plaintext);
    cipher->finish(body);
    sealed_blob out;
    out.bytes.reserve(1 + nonce_size + body.size());
    out.bytes.push_back(format_version);
    out.bytes.insert(out.bytes.end(), nonce.begin(), nonce.end());
    out.bytes.insert(out.bytes.end(), body.begin(), body.end());
    return out;
  } catch (const std::exception& e) {
    return make_error(ec::crypto_failure,
                      "sealing the secret of record " + quoted(record_id) + " failed: " + e.what());
  }
}

caf::expected<secret_bytes> open(const master_key& key, std::string_view record_id,
                                 const sealed_blob& blob) {
  const auto& b = blob.bytes;
  if (b.size() < 1 + nonce_size + tag_size)
    return tampered(record_id, "is " + std::to_string(b.size()) +
                                   " bytes, shorter than any sealed "
                                   "secret");
  // A modified version byte is tampering like any other flipped bit; there is no version 2 yet.
  if (b[0] != format_version)
    return tampered(record_id, "has unknown format version " + std::to_string(b[0]));
  try {
    auto cipher = Botan::AEAD_Mode::create_or_throw(algorithm, Botan::DECRYPTION);
    cipher->set_key(key.bytes());
    cipher->set_associated_data(reinterpret_cast<const uint8_t*>(record_id.data()),
                                record_id.size());
    cipher->start(b.data() + 1, nonce_size);
    Botan::secure_vector<uint8_t> body(b.begin() + 1 + nonce_size, b.end());
    cipher->finish(body);
    return from_botan(body);
  } catch (const Botan::Invalid_Authentication_Tag&) {
    return tampered(record_id, "failed authentication");
  } catch (const std::exception& e) {
    return make_error(ec::crypto_failure,
                      "opening the secret of record " + quoted(record_id) + " failed: " + e.what());
  }
}

}  // namespace certfleet
