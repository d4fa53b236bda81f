// The agent database's keys and records (storage/agent_store.hpp), as bytes: how a registered
// manager and a named value are laid out in RocksDB, and the decoders that read them back. Internal
// to storage/ (and its tests and fuzz target); it includes no RocksDB header.
//
// Key layout (the first byte names the table):
//   'm' | be32 endpoint | 32-byte thumbprint  -> be64 registered ms | manager name
//   'c' | be32 endpoint | 32-byte thumbprint  -> the manager's certificate (DER), when known
//   'v' | name | 0x00 | be32 endpoint         -> value (name first: one prefix scan per name)
//   'x' | key                                 -> meta value
//
// Decoding: the decoders take bytes read from disk, which may be damaged: they return false (or
// nothing) for anything that is not a record of the layout above and never read past the input.
// A record they accept encodes back to exactly the same bytes (the encoding is canonical).
//
// Thread-safety: free functions without state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/thumbprint.hpp"
#include "storage/agent_store.hpp"

namespace certfleet::storage_detail {

inline constexpr char tag_manager = 'm';
inline constexpr char tag_manager_certificate = 'c';
inline constexpr char tag_value = 'v';
inline constexpr char tag_meta = 'x';

inline void append_be32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xff));
}

/// The big-endian 32-bit number at `p`; the caller guarantees 4 readable bytes.
inline uint32_t read_be32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

/// The prefix of every manager key of `endpoint`.
inline std::string manager_prefix(uint32_t endpoint) {
  std::string k(1, tag_manager);
  append_be32(k, endpoint);
  return k;
}

inline std::string manager_key(uint32_t endpoint, const thumbprint& t) {
  auto k = manager_prefix(endpoint);
  k.append(reinterpret_cast<const char*>(t.bytes().data()), t.bytes().size());
  return k;
}

inline std::string manager_certificate_key(uint32_t endpoint, const thumbprint& t) {
  auto k = manager_key(endpoint, t);
  k[0] = tag_manager_certificate;
  return k;
}

/// The prefix of every key of the value called `name`.
inline std::string value_prefix(const std::string& name) {
  std::string k(1, tag_value);
  k += name;
  k.push_back('\0');
  return k;
}

inline std::string value_key(uint32_t endpoint, const std::string& name) {
  auto k = value_prefix(name);
  append_be32(k, endpoint);
  return k;
}

/// The value stored under `manager_key`: registration time and name (the certificate has its own
/// key).
inline std::string encode_manager(const manager_record& r) {
  std::string v;
  auto ms = static_cast<uint64_t>(r.registered_unix_ms);
  append_be32(v, static_cast<uint32_t>(ms >> 32));
  append_be32(v, static_cast<uint32_t>(ms & 0xffffffffu));
  v += r.manager_name;
  return v;
}

/// Reads a manager key and its value into `endpoint` and `r` (all but `certificate_der`). False,
/// leaving `r` unspecified, when the key is not a manager key or the value is too short.
inline bool decode_manager(std::string_view key, std::string_view value, uint32_t& endpoint,
                           manager_record& r) {
  if (key.size() != 1 + 4 + thumbprint::size || key[0] != tag_manager || value.size() < 8)
    return false;
  endpoint = read_be32(key.data() + 1);
  auto t =
      thumbprint::from_bytes(reinterpret_cast<const uint8_t*>(key.data() + 5), thumbprint::size);
  if (!t) return false;
  r.manager_thumbprint = *t;
  uint64_t ms = (uint64_t{read_be32(value.data())} << 32) | read_be32(value.data() + 4);
  r.registered_unix_ms = static_cast<int64_t>(ms);
  r.manager_name.assign(value.data() + 8, value.size() - 8);
  return true;
}

/// The endpoint of a value key that starts with `prefix` (a `value_prefix`); nothing when the key
/// is not `prefix` followed by exactly 4 bytes.
inline std::optional<uint32_t> decode_value_key(std::string_view key, std::string_view prefix) {
  if (key.size() != prefix.size() + 4 || key.substr(0, prefix.size()) != prefix) return {};
  return read_be32(key.data() + prefix.size());
}

}  // namespace certfleet::storage_detail
