// What each libFuzzer target does with one input, shared with the GoogleTest that replays every
// seed corpus (tests/fuzz/corpus/<target>/) in each ctest run. Each function feeds the bytes to one
// parser of hostile or careless input and checks what must hold for any input: no crash (the
// sanitizers watch for that), failures typed as the parser documents, and whatever parses renders
// back to something that parses to the same value. A returned non-empty string names the
// broken invariant.
//
// Targets: control_request (control socket request lines and host:port addresses), config (the TOML
// settings loader), thumbprint (user-typed SHA-256 and SHA-1 thumbprints), records (the stored
// server and event records), sealed (sealed credential blobs opened with a key) and agent_records
// (the agent database's manager records and value keys, storage/agent_records.hpp). The frame and
// message decoder has its own target (protocol_fuzz.cpp, replay.hpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/settings.hpp"
#include "control/protocol.hpp"
#include "crypto/sealing.hpp"
#include "crypto/thumbprint.hpp"
#include "storage/agent_records.hpp"
#include "storage/records.hpp"

namespace certfleet::fuzz {

inline std::string as_text(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

inline std::string control_request(const uint8_t* data, size_t size) {
  auto line = as_text(data, size);
  control::request req;
  auto err = control::parse_request(line, req);
  if (err) {
    if (code_of(err) != ec::invalid_argument)
      return "parse_request failed with " + std::string(to_string(code_of(err))) +
             ", not invalid_argument";
  } else {
    if (req.op.empty()) return "parse_request accepted a request without an op";
    if (!req.args.is_object()) return "parse_request accepted args that are not an object";
    if (!control::required_access(req.op)) return "parse_request accepted the unknown op " + req.op;
  }
  std::string host;
  uint16_t port = 0;
  if (!control::parse_address(line, host, port) && host.empty())
    return "parse_address accepted an address without a host";
  return {};
}

inline std::string config(const uint8_t* data, size_t size) {
  auto parsed = parse_settings(as_text(data, size), "fuzz.toml");
  if (!parsed) {
    if (code_of(parsed.error()) != ec::bad_config)
      return "parse_settings failed with " + std::string(to_string(code_of(parsed.error()))) +
             ", not bad_config";
    return {};
  }
  auto rendered = render_settings(*parsed);
  auto again = parse_settings(rendered, "rendered.toml");
  if (!again) return "rendered settings do not parse back: " + describe(again.error());
  if (render_settings(*again) != rendered) return "rendered settings do not round-trip";
  return {};
}

template <class T>
std::string thumbprint_round_trip(const std::string& text) {
  auto t = T::parse(text);
  if (!t) {
    if (code_of(t.error()) != ec::bad_thumbprint) return "parse failed with another code";
    return {};
  }
  auto plain = T::parse(t->to_string());
  auto colon = T::parse(t->to_colon_string());
  if (!plain || !colon || *plain != *t || *colon != *t)
    return "a parsed thumbprint does not parse back from its printed forms";
  return {};
}

inline std::string thumbprint_text(const uint8_t* data, size_t size) {
  auto text = as_text(data, size);
  auto r = thumbprint_round_trip<thumbprint>(text);
  if (r.empty()) r = thumbprint_round_trip<sha1_thumbprint>(text);
  return r;
}

// The first byte picks the decoder, the rest is the record: a decoded record must encode back
// to exactly the same bytes when it is of the current format version (the encoding is canonical:
// trailing bytes are refused).
inline std::string records(const uint8_t* data, size_t size) {
  if (size == 0) return {};
  std::vector<uint8_t> bytes(data + 1, data + size);
  if (data[0] & 1) {
    auto e = decode_event_record(bytes);
    if (e && encode(*e) != bytes) return "an event record does not re-encode to the same bytes";
    if (!e && code_of(e.error()) != ec::corrupt_data) return "an event record failed untyped";
  } else {
    auto r = decode_server_record(bytes);
    // An older format version decodes and is written back in the current one.
    if (r && encode(*r)[0] == bytes[0] && encode(*r) != bytes)
      return "a server record does not re-encode to the same bytes";
    if (!r && code_of(r.error()) != ec::corrupt_data) return "a server record failed untyped";
  }
  return {};
}

// Opening is with a key the input cannot know, so every blob must fail, as tampered.
inline std::string sealed(const master_key& key, const uint8_t* data, size_t size) {
  sealed_blob blob;
  blob.bytes.assign(data, data + size);
  auto opened = open(key, "s-1", blob);
  if (opened) return "a blob from hostile bytes opened";
  if (code_of(opened.error()) != ec::tampered) return "a hostile blob failed, but not as tampered";
  return {};
}

// The agent database's records, as read back from RocksDB. The first byte picks the table (even: a
// manager key and its value; odd: a named value's key), the second the length of the first part
// (the key, or the value's name), and the rest is split there. What decodes must encode back to
// the same key and value; what is refused must not have the layout of a record.
inline std::string agent_records(const uint8_t* data, size_t size) {
  namespace sd = storage_detail;
  if (size < 2) return {};
  auto first_len = std::min<size_t>(data[1], size - 2);
  std::string_view first(reinterpret_cast<const char*>(data + 2), first_len);
  std::string_view rest(reinterpret_cast<const char*>(data + 2 + first_len), size - 2 - first_len);
  if ((data[0] & 1) == 0) {
    uint32_t endpoint = 0;
    manager_record r;
    if (!sd::decode_manager(first, rest, endpoint, r)) {
      if (first.size() == 1 + 4 + thumbprint::size && first[0] == sd::tag_manager &&
          rest.size() >= 8)
        return "a manager record of the right layout was refused";
      return {};
    }
    if (sd::manager_key(endpoint, r.manager_thumbprint) != first)
      return "a decoded manager key does not encode back to the same bytes";
    if (sd::encode_manager(r) != rest)
      return "a decoded manager value does not encode back to the same bytes";
    if (first.substr(0, 5) != sd::manager_prefix(endpoint))
      return "a decoded manager key is not under its endpoint's prefix";
    return {};
  }
  std::string name(first);
  auto prefix = sd::value_prefix(name);
  auto endpoint = sd::decode_value_key(rest, prefix);
  if (!endpoint) {
    if (rest.size() == prefix.size() + 4 && rest.substr(0, prefix.size()) == prefix)
      return "a value key of the right layout was refused";
    return {};
  }
  if (sd::value_key(*endpoint, name) != rest)
    return "a decoded value key does not encode back to the same bytes";
  return {};
}

}  // namespace certfleet::fuzz
