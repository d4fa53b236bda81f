// Fleet manifests and bulk server lists in JSON: the one parser the CLI (`server add --from`,
// `server trust --all-matching-manifest`) and the daemon (`server.trust_manifest` entries) share.
//
// Accepted documents: a JSON array of entries, or an object holding one under "endpoints" (the
// agent's manifest.json, docs/agent.md) or "servers". Each entry is an object with
//   host      "host" or "address"; a hostname or an IP literal (brackets around IPv6 allowed)
//   port      an integer or a numeric string; absent, null or "" means `default_server_port`
//   thumbprint "sha256", "thumbprint" or "expected_thumbprint" (64 hex digits, colons allowed);
//             "" counts as absent, as an empty CSV column does
//   account   "account" or "admin_account"
//   name      "name"
// Other keys ("index", "server_id", ...) are ignored. Hosts come back validated and normalised
// (common/address.hpp); names and accounts are refused when they hold control characters.
//
// A server list (`server add --from`) may also be CSV: a header row naming the columns with the
// same keys (at least "host" or "address"; unknown columns are ignored), then one server per line.
// A field may be enclosed in double quotes to hold commas ("" inside is one quote); spaces around
// a field and blank lines are ignored. Each row is read exactly as the JSON object it spells.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "crypto/thumbprint.hpp"

namespace certfleet::control {

struct manifest_entry {
  std::string host;  // normalised, without brackets
  uint16_t port = 0;
  std::optional<thumbprint> sha256;
  std::string account;
  std::string name;

  /// `host:port` in normal form (common/address.hpp): what entries are matched to servers by.
  std::string address() const;
};

/// Whether every entry must carry a thumbprint (trust manifests) or may leave it out (bulk adds).
enum class thumbprint_rule { optional, required };

/// Parses one entry (an object with the keys above); errors start with `where`.
caf::expected<manifest_entry> parse_manifest_entry(const nlohmann::json& entry,
                                                   const std::string& where, thumbprint_rule rule);

/// Parses a manifest document. Errors (`ec::invalid_argument`, `ec::bad_thumbprint`) name
/// `source` and the entry index ("fleet.json entry 3: ...").
caf::expected<std::vector<manifest_entry>> parse_manifest(const nlohmann::json& doc,
                                                          const std::string& source,
                                                          thumbprint_rule rule);

/// The same for manifest text; text that is not JSON is `ec::invalid_argument`.
caf::expected<std::vector<manifest_entry>> parse_manifest_text(std::string_view text,
                                                               const std::string& source,
                                                               thumbprint_rule rule);

/// A server list: manifest JSON (text starting with '[' or '{') or CSV as above. CSV errors name
/// `source` and the line ("servers.csv:3: ..."), a CSV without a host column is refused naming
/// the header.
caf::expected<std::vector<manifest_entry>> parse_server_list_text(std::string_view text,
                                                                  const std::string& source,
                                                                  thumbprint_rule rule);

}  // namespace certfleet::control
