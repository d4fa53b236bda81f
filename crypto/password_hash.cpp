#include "crypto/password_hash.hpp"

#include <cstdint>
#include <exception>
#include <string_view>
#include <vector>

#include <botan/argon2.h>
#include <botan/base64.h>
#include <botan/mem_ops.h>
#include <botan/system_rng.h>

namespace certfleet {

namespace {

constexpr uint8_t argon2id_family = 2;
constexpr size_t salt_length = 16;
constexpr size_t hash_length = 32;

struct argon2_params {
  size_t m = 0;  // KiB
  size_t t = 0;
  size_t p = 0;
};

argon2_params params_of(hash_profile profile) {
  switch (profile) {
    case hash_profile::interactive:
      return {19 * 1024, 2, 1};
    case hash_profile::simulation:
      return {8, 1, 1};
  }
  return {19 * 1024, 2, 1};
}

std::string unpadded_base64(const uint8_t* data, size_t size) {
  auto text = Botan::base64_encode(data, size);
  while (!text.empty() && text.back() == '=') text.pop_back();
  return text;
}

caf::error corrupt(const std::string& why) {
  return make_error(ec::corrupt_data,
                    "the stored password hash is malformed (" + why +
                        "); set the password again with 'certfleet-agent accounts add'");
}

bool decode_base64(std::string_view text, std::vector<uint8_t>& out) {
  for (char c : text) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/';
    if (!ok) return false;
  }
  if (text.size() % 4 == 1) return false;
  std::string padded(text);
  while (padded.size() % 4 != 0) padded.push_back('=');
  try {
    auto bytes = Botan::base64_decode(padded, false);
    out.assign(bytes.begin(), bytes.end());
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    auto pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

// Strict decimal without sign, leading zeros or overflow; false otherwise.
bool parse_number(std::string_view text, size_t max, size_t& out) {
  if (text.empty() || text.size() > 10 || (text.size() > 1 && text[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) return false;
  out = static_cast<size_t>(v);
  return true;
}

}  // namespace

const char* to_string(hash_profile p) {
  return p == hash_profile::simulation ? "simulation" : "interactive";
}

caf::expected<hash_profile> parse_hash_profile(const std::string& text) {
  if (text == "interactive") return hash_profile::interactive;
  if (text == "simulation") return hash_profile::simulation;
  return make_error(ec::invalid_argument, "unknown password hash profile '" + text +
                                              "'; use 'interactive' or 'simulation'");
}

caf::expected<std::string> hash_password(const secret_bytes& password, hash_profile profile) {
  auto prm = params_of(profile);
  try {
    std::vector<uint8_t> salt(salt_length);
    Botan::system_rng().randomize(salt.data(), salt.size());
    Botan::Argon2 argon(argon2id_family, prm.m, prm.t, prm.p);
    std::vector<uint8_t> out(hash_length);
    argon.derive_key(out.data(), out.size(), reinterpret_cast<const char*>(password.data()),
                     password.size(), salt.data(), salt.size());
    return "$argon2id$v=19$m=" + std::to_string(prm.m) + ",t=" + std::to_string(prm.t) +
           ",p=" + std::to_string(prm.p) + "$" + unpadded_base64(salt.data(), salt.size()) + "$" +
           unpadded_base64(out.data(), out.size());
  } catch (const std::exception& e) {
    return make_error(ec::crypto_failure, std::string{"cannot hash a password: "} + e.what());
  }
}

caf::expected<bool> verify_password(const secret_bytes& password, const std::string& encoded) {
  auto parts = split(encoded, '$');
  // "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
  if (parts.size() != 6 || !parts[0].empty()) return corrupt("not a PHC string");
  if (parts[1] != "argon2id") return corrupt("algorithm is not argon2id");
  if (parts[2] != "v=19") return corrupt("Argon2 version is not 19");
  auto prm_text = split(parts[3], ',');
  argon2_params prm;
  if (prm_text.size() != 3 || prm_text[0].substr(0, 2) != "m=" ||
      prm_text[1].substr(0, 2) != "t=" || prm_text[2].substr(0, 2) != "p=" ||
      !parse_number(prm_text[0].substr(2), 1024 * 1024, prm.m) ||
      !parse_number(prm_text[1].substr(2), 16, prm.t) ||
      !parse_number(prm_text[2].substr(2), 8, prm.p) || prm.t < 1 || prm.p < 1 || prm.m < 8 * prm.p)
    return corrupt("parameters missing or out of bounds");
  std::vector<uint8_t> salt;
  std::vector<uint8_t> expected;
  if (!decode_base64(parts[4], salt) || salt.size() < 8 || salt.size() > 64)
    return corrupt("bad salt");
  if (!decode_base64(parts[5], expected) || expected.size() < 16 || expected.size() > 64)
    return corrupt("bad hash");
  try {
    Botan::Argon2 argon(argon2id_family, prm.m, prm.t, prm.p);
    std::vector<uint8_t> out(expected.size());
    argon.derive_key(out.data(), out.size(), reinterpret_cast<const char*>(password.data()),
                     password.size(), salt.data(), salt.size());
    return Botan::constant_time_compare(out.data(), expected.data(), out.size());
  } catch (const std::exception& e) {
    return make_error(ec::crypto_failure, std::string{"cannot verify a password: "} + e.what());
  }
}

}  // namespace certfleet
