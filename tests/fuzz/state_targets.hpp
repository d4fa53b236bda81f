// More libFuzzer targets, in the style of targets.hpp: the bulk-add and trust manifest parser
// (control/manifest.hpp), the manager's TLS session file (protocol/tls_session_cache.hpp) and the
// agent's state files (its accounts file and its identity PEM). Each returns a non-empty string
// naming the broken invariant. Replayed from tests/fuzz/corpus/<target>/ by
// fuzz_state_corpus_tests.
#pragma once

#include <string>
#include <vector>

#include "agent/accounts.hpp"
#include "common/bytes.hpp"
#include "control/manifest.hpp"
#include "control/protocol.hpp"
#include "crypto/identity.hpp"
#include "crypto/sealing.hpp"
#include "protocol/tls_session_cache.hpp"

namespace certfleet::fuzz {

inline bool has_control_character(const std::string& s) {
  for (char c : s) {
    auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7F) return true;
  }
  return false;
}

// The first byte picks the rule (odd: thumbprints required), the rest is the document. What
// parses must hold validated entries and parse back to the same entries from its own rendering.
inline std::string manifest(const uint8_t* data, size_t size) {
  if (size == 0) return {};
  auto rule =
      (data[0] & 1) ? control::thumbprint_rule::required : control::thumbprint_rule::optional;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto parsed = control::parse_manifest_text(text, "fuzz.json", rule);
  if (!parsed) {
    auto code = code_of(parsed.error());
    if (code != ec::invalid_argument && code != ec::bad_thumbprint)
      return "parse_manifest_text failed with " + std::string(to_string(code));
    return {};
  }
  nlohmann::json again = nlohmann::json::array();
  for (const auto& e : *parsed) {
    if (e.host.empty()) return "an entry without a host was accepted";
    if (rule == control::thumbprint_rule::required && !e.sha256)
      return "an entry without a thumbprint was accepted where one is required";
    if (has_control_character(e.name) || has_control_character(e.account) ||
        has_control_character(e.host))
      return "a control character was accepted in a host, name or account";
    std::string host;
    uint16_t port = 0;
    if (control::parse_address(e.address(), host, port) || host != e.host || port != e.port)
      return "an accepted entry's address does not parse back: " + e.address();
    nlohmann::json j{{"host", e.host}, {"port", e.port}, {"account", e.account}, {"name", e.name}};
    if (e.sha256) j["sha256"] = e.sha256->to_string();
    again.push_back(j);
  }
  auto reparsed = control::parse_manifest(again, "rendered.json", rule);
  if (!reparsed) return "rendered entries do not parse back: " + describe(reparsed.error());
  if (reparsed->size() != parsed->size()) return "rendered entries parse to another count";
  for (size_t i = 0; i < parsed->size(); ++i) {
    const auto& a = (*parsed)[i];
    const auto& b = (*reparsed)[i];
    if (a.host != b.host || a.port != b.port || a.account != b.account || a.name != b.name ||
        a.sha256.has_value() != b.sha256.has_value() || (a.sha256 && *a.sha256 != *b.sha256))
      return "an entry does not round-trip";
  }
  return {};
}

// The first byte picks the mode: even, the rest is a whole session file; odd, the rest is the
// content of one session, sealed correctly under `key` into a well-formed file, so that the
// session decoder behind the seal is reached too. Loading (from memory: `load` reads the file and
// decodes it the same way) must add sessions or fail with one of its documented errors, adding
// nothing.
inline std::string tls_sessions(const master_key& key, const uint8_t* data, size_t size) {
  if (size == 0) return {};
  std::vector<uint8_t> bytes;
  if (data[0] & 1) {
    const std::string id = "tls-session:backup-1.example:9401";
    auto blob = seal(key, id, secret_bytes(data + 1, data + size));
    if (!blob) return "sealing failed: " + describe(blob.error());
    byte_writer w;
    const uint8_t magic[4] = {'C', 'F', 'T', 'S'};
    w.raw(magic, sizeof magic);
    w.u8(1);
    w.u32(1);
    w.str(id);
    w.bytes(blob->bytes.data(), blob->bytes.size());
    bytes = w.data();
  } else {
    bytes.assign(data + 1, data + size);
  }
  tls_session_cache cache(16);
  auto loaded = cache.load_bytes(bytes.data(), bytes.size(), "fuzz/tls-sessions", key);
  if (!loaded) {
    auto code = code_of(loaded.error());
    if (code != ec::corrupt_data && code != ec::tampered)
      return "load failed with " + std::string(to_string(code));
    if (cache.size() != 0) return "a failed load added sessions";
    return {};
  }
  if (*loaded != cache.size()) return "load reported another count than it added";
  return {};
}

// The first byte picks the file: even, an accounts file (what parses must render and parse back
// to the same accounts); odd, an identity's key and certificate PEM separated by a NUL byte (what
// loads must belong together: its thumbprint is its certificate's).
inline std::string agent_state(const uint8_t* data, size_t size) {
  if (size == 0) return {};
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((data[0] & 1) == 0) {
    auto book = agent::account_book::from_json(text, "fuzz.json");
    if (!book) {
      if (code_of(book.error()) != ec::corrupt_data) return "accounts failed, not as corrupt_data";
      return {};
    }
    auto again = agent::account_book::from_json(book->to_json(), "rendered.json");
    if (!again) return "rendered accounts do not parse back: " + describe(again.error());
    if (again->accounts().size() != book->accounts().size()) return "accounts lost in rendering";
    for (size_t i = 0; i < book->accounts().size(); ++i) {
      const auto& a = book->accounts()[i];
      const auto& b = again->accounts()[i];
      if (a.name != b.name || a.role != b.role || a.password_hash != b.password_hash)
        return "an account does not round-trip";
    }
    return {};
  }
  auto nul = text.find('\0');
  std::string key_pem = nul == std::string::npos ? text : text.substr(0, nul);
  std::string cert_pem = nul == std::string::npos ? std::string{} : text.substr(nul + 1);
  auto id = identity::from_pem(secret_bytes(key_pem.begin(), key_pem.end()), cert_pem, "fuzz");
  if (!id) {
    if (code_of(id.error()) != ec::corrupt_data) return "identity failed, not as corrupt_data";
    return {};
  }
  if (id->sha256() != thumbprint::of_der(id->certificate_der()))
    return "a loaded identity's thumbprint is not its certificate's";
  return {};
}

}  // namespace certfleet::fuzz
