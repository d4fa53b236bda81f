// certfleet's configuration: a TOML file (toml++) whose every key has a documented default, so the
// daemon and the CLI run with no file at all. `config/certfleet.example.toml` documents every key.
//
// Parsing is strict: an unknown key, a value of the wrong type or out of range fails with
// `ec::bad_config` and a message naming the file, the key (dotted, "identity.validity_days") and
// its line ("certfleet.toml:7: identity.validity_days must be an integer between 1 and 3650, got
// 0"); an unknown key close to a known one gets a "did you mean" hint. When a file has several
// problems, the message lists all of them, one per line, in file order. A TOML syntax error is
// reported as "FILE:LINE:COL: <parser's description>".
//
// Paths: a relative `state_dir` or `daemon.control_socket` is resolved against the directory of the
// configuration file (not the working directory), so a file keeps meaning the same thing wherever
// the daemon starts. "~" is not expanded.
//
// Adding a key: one entry in the key table of config/settings.cpp plus its field here (whose
// initializer is the default) and its line in certfleet.example.toml.
//
// Thread-safety: plain values; the functions are pure apart from load_settings reading its file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/vocabulary.hpp"

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
  /// The sealing master key; empty means <state_dir>/master.key (see `locate_master_key`).
  std::filesystem::path master_key_file;
  /// A group allowed to read the certificate store (key files 0640, directory 0750; "" = none).
  std::string store_group;
  /// Seconds between repeats of a due renewal prompt, until the certificate is renewed
  /// (60..2592000).
  int renewal_reminder_interval_s = 86400;
};

struct log_settings {
  /// trace, debug, info, warn, error, critical, off
  std::string level = "info";
  /// text or json
  std::string format = "text";
};

/// How the manager daemon connects, retries and trusts. The [daemon] section.
struct daemon_settings {
  /// Control socket path; empty means <state_dir>/control.sock.
  std::string control_socket;
  /// A group whose members may list servers and follow events, never change trust ("" = none).
  std::string read_only_group;
  /// Deadline of one TCP connect to a server; at most handshake_timeout_ms.
  int connect_timeout_ms = 5000;
  /// Deadline of connect plus TLS handshake, counted from the start of the connect.
  int handshake_timeout_ms = 10000;
  /// Fleet-wide cap on TLS handshakes in flight, so a restart never becomes a storm.
  int max_concurrent_handshakes = 64;
  /// Seconds between collections from a trusted server (each jittered by up to 10 %).
  int collect_interval_s = 60;
  /// Reconnect backoff: capped exponential with full jitter.
  int backoff_initial_ms = 1000;
  int backoff_max_ms = 300000;
  /// A connection up this long counts as healthy and resets the backoff (so does a collection).
  int backoff_reset_after_s = 60;
  /// manual (an admin validates every thumbprint), expected-only (only thumbprints given in
  /// advance are trusted automatically), tofu (trust on first use; events still say so).
  certfleet::trust_policy trust_policy = certfleet::trust_policy::manual;
  /// How far the clocks of manager and server may disagree: a pinned server certificate is
  /// accepted from notBefore minus this to notAfter plus this (0..86400 seconds).
  int clock_skew_tolerance_s = 300;
  /// Retained credentials older than this are destroyed and the server goes to auth_failed
  /// (0 = keep until used).
  int credential_max_age_s = 0;
  /// Events kept in the database: at most this many, and none older than event_retention_days.
  int event_retention_count = 1000000;
  int event_retention_days = 90;
  /// Largest application frame accepted from a server.
  int max_frame_bytes = 1 << 20;
  /// Deadline of one control request inside the daemon.
  int request_timeout_ms = 10000;
  /// A connected server from which nothing arrived for this long is declared dead and reconnected
  /// (3..3600 seconds). The manager pings it after a third of this without traffic, and it is the
  /// TCP_USER_TIMEOUT of the manager's sockets (docs/protocol.md, "Liveness").
  int peer_timeout_s = 30;
};

/// The Prometheus endpoint. The [metrics] section.
struct metrics_settings {
  /// IP:PORT to serve /metrics on ("" = off). An IPv6 literal is written in brackets.
  std::string listen;
};

struct settings {
  /// Where certfleet keeps its certificate store, master key and database.
  std::filesystem::path state_dir = "/var/lib/certfleet";
  identity_settings identity;
  log_settings log;
  daemon_settings daemon;
  metrics_settings metrics;
};

/// Parses TOML text; `source` names it in error messages. Relative paths are resolved against
/// `base_dir`; when `base_dir` is empty they are kept relative, as written. Empty text gives the
/// defaults. Fails with `ec::bad_config` (syntax error, unknown key, bad value).
caf::expected<settings> parse_settings(std::string_view toml_text, const std::string& source,
                                       const std::filesystem::path& base_dir = {});

/// Reads and parses a file, resolving relative paths against the file's (absolute) directory.
/// Fails with `ec::not_found` naming the path when it does not exist, `ec::io_error` when it cannot
/// be read, `ec::bad_config` when it is invalid.
caf::expected<settings> load_settings(const std::filesystem::path& file);

/// Where the sealing master key comes from.
struct master_key_location {
  std::filesystem::path file;
  /// Names the source for messages: "master key file /etc/certfleet/master.key" or "systemd
  /// credential master.key (/run/credentials/certfleetd.service/master.key)".
  std::string description;
  /// True for a systemd credential: read-only, never created or replaced by certfleet.
  bool systemd_credential = false;
};

/// The master key's location: `$CREDENTIALS_DIRECTORY/master.key` when `credentials_directory`
/// (pass `std::getenv("CREDENTIALS_DIRECTORY")`) is set and holds that file (systemd's
/// `LoadCredential=master.key:...` or `LoadCredentialEncrypted=`), else `identity.master_key_file`,
/// else `<state_dir>/master.key`.
master_key_location locate_master_key(const settings& s, const char* credentials_directory);

/// One documented key, for help output and for checking the example file.
struct setting_description {
  /// Dotted key ("identity.validity_days").
  std::string key;
  /// What the key means.
  std::string doc;
  /// What a valid value is, completing "<key> must be ..." ("an integer between 1 and 3650").
  std::string requirement;
  /// The default as a TOML literal ("365", "\"info\"").
  std::string default_value;
};

/// Every key certfleet understands, in the order of the key table.
std::vector<setting_description> describe_settings();

/// `s` as TOML text that parse_settings reads back to the same values (top-level keys first, then
/// one [section] per group). Meant for "show the effective configuration".
std::string render_settings(const settings& s);

}  // namespace certfleet
