// The state directory of an agent, for one endpoint (`run`) or a fleet (`fleet`), and how each is
// opened, created on first start and turned into `endpoint`s.
//
// Single agent, <state>/ (0700):
//   certs/          certificate store (crypto/certificate_store.hpp): the endpoint's identity
//   accounts.json   accounts, 0600, atomic (agent/accounts.hpp)
//   db/             agent store: registered managers, server id
//   fleet.sock      control socket while running
// The running agent re-reads certs/current and accounts.json before serving each new connection
// when their inode, size or mtime changed, so `cert regenerate` and `accounts add` take effect
// without a restart (existing connections keep the identity they started with).
//
// Fleet, <state>/ (0700):
//   db/             ONE agent store for all endpoints, per-endpoint prefixes: identity (key and
//                   certificate PEM), accounts JSON, registered managers
//   manifest.json   per endpoint: index, address, port, SHA-256 thumbprint, server id, admin
//                   account; written atomically once every endpoint listens, rewritten on
//                   `regenerate`
//   fleet.sock      control socket
// Identities are generated once, on both cores, and reused on restart; a larger --count generates
// only the missing ones. The admin account is hashed separately for each endpoint (own salt) with
// the `simulation` profile: a copied hash would make every endpoint's file identical, and strong
// hashing of 10,000 copies would take minutes; on restart a stored hash that still verifies is
// kept.
//
// Thread-safety: the functions are not reentrant for the same directory; one agent per directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/endpoint.hpp"
#include "agent/server.hpp"
#include "common/error.hpp"
#include "crypto/certificate_store.hpp"
#include "crypto/password_hash.hpp"
#include "storage/agent_store.hpp"

namespace certfleet::agent {

/// Paths inside a state directory (both kinds).
struct state_paths {
  explicit state_paths(std::filesystem::path root);
  std::filesystem::path root, certs, accounts, db, manifest, control_socket;
};

/// The subject of every agent certificate, with the server id as common name.
identity_subject agent_subject(const std::string& server_id);

struct single_agent {
  std::unique_ptr<agent_store> store;
  std::unique_ptr<endpoint> ep;
  bool identity_created = false;
  bool accounts_created = false;
};

struct single_agent_options {
  lockout_policy lockout;
  clock_fn clock = [] { return std::chrono::system_clock::now(); };
  /// Speak only the legacy protocol (endpoint_options::legacy).
  bool legacy = false;
};

/// Opens a single agent's state dir, creating the directory, identity, empty accounts file and
/// store on first start. Refuses a fleet state dir (`ec::invalid_state`), an exposed accounts
/// file or key (`ec::insecure_permissions`).
caf::expected<single_agent> open_single_agent(const std::filesystem::path& root,
                                              const single_agent_options& options = {});

/// Makes a new identity for a single agent and installs it in its certificate store.
caf::expected<identity> regenerate_single_identity(const std::filesystem::path& root,
                                                   const std::string& server_id);

struct fleet_options {
  std::filesystem::path state_dir;
  size_t count = 0;
  std::string bind = "127.0.0.1";  // every endpoint on this address, ports base_port + i
  std::string bind_range;          // or: endpoint i on this IPv4 address + i, all on base_port
  uint16_t base_port = 0;          // 0: each endpoint gets an ephemeral port
  std::string admin_account = "admin";
  secret_bytes admin_password;
  hash_profile profile = hash_profile::simulation;
  size_t threads = 2;
  /// Endpoints 0 .. legacy_count - 1 speak only the legacy protocol (endpoint_options::legacy).
  size_t legacy_count = 0;
  lockout_policy lockout;
  clock_fn clock = [] { return std::chrono::system_clock::now(); };
};

struct fleet {
  std::unique_ptr<agent_store> store;
  std::string fleet_id;
  std::vector<std::unique_ptr<endpoint>> endpoints;
  std::vector<listen_address> addresses;
  size_t identities_generated = 0;
};

/// File descriptors a fleet of `count` endpoints needs at rest (listening sockets plus headroom
/// for the database, the control socket and a few connections).
uint64_t fds_needed(size_t count);
/// `ec::invalid_argument` with "N endpoints need about X file descriptors; the limit is L: raise
/// it or split the fleet over several processes" when `fds_needed(count) > limit`.
caf::error check_fd_budget(size_t count, uint64_t limit);

/// Opens or creates the fleet's state (see the file comment). Errors name what is wrong: an
/// address range leaving 127.0.0.0/8 or ports above 65535 (`ec::invalid_argument`), a single-agent
/// state dir (`ec::invalid_state`), storage and crypto failures.
caf::expected<fleet> open_fleet(const fleet_options& options);

/// Writes the manifest of a started fleet server atomically (mode 0644).
caf::error write_manifest(const std::filesystem::path& path, const agent_server& server,
                          const std::string& fleet_id, const std::string& admin_account);

}  // namespace certfleet::agent
