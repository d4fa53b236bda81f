// certfleet's configuration: a TOML file (toml++) whose every key has a documented default, so the
// daemon and the CLI run with no file at all. `config/certfleet.example.toml` documents every key.
//
// Parsing is strict: an unknown key, a value of the wrong type or out of range fails with
// `ec::bad_config` and a message naming the file, the key (dotted, "identity.validity_days") and
// its line ("certfleet.toml:7: identity.validity_days must be between 1 and 3650, got 0").
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace certfleet {

struct identity_settings {
  /// The installation's licensed organisation: becomes the certificate subject's O.
  std::string organization = "certfleet";
  /// The certificate subject's CN.
  std::string common_name = "certfleet-manager";
  /// Validity of generated certificates, in days (1..3650).
  int validity_days = 365;
  /// Days before expiry at which renewal is prompted (1..365, below validity_days).
  int renewal_warning_days = 30;
};

struct log_settings {
  /// trace, debug, info, warn, error, critical, off
  std::string level = "info";
  /// text or json
  std::string format = "text";
};

struct settings {
  /// Where certfleet keeps its certificate store, master key and database.
  std::filesystem::path state_dir = "/var/lib/certfleet";
  identity_settings identity;
  log_settings log;
};

/// Parses TOML text; `source` names it in error messages.
caf::expected<settings> parse_settings(std::string_view toml_text, const std::string& source);

/// Reads and parses a file; `ec::not_found` when missing, `ec::bad_config` when invalid.
caf::expected<settings> load_settings(const std::filesystem::path& file);

}  // namespace certfleet
