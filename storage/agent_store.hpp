// The durable state of a backup-server agent: one RocksDB database for one endpoint (`run`) or for
// every endpoint of a simulated fleet (`fleet`), with per-endpoint key prefixes. One database per
// process keeps the file-descriptor cost flat: 10,000 RocksDB instances would not fit the limit.
//
// What it holds, per endpoint (a 32-bit index; a single agent is endpoint 0):
//   managers      the registered managers: thumbprint, name, time and the whole certificate (DER)
//                 they registered with (trust decisions: every write and removal is fsynced
//                 before the call returns)
//   named values  small opaque strings by name; fleet mode keeps each endpoint's identity (PEM),
//                 accounts (JSON) and server id here
// and a few process-wide `meta` values (state-dir kind, fleet id).
//
// Secrets: fleet identities' private keys are stored here as PEM, protected only by the 0700 state
// directory, because 10,000 certificate stores would cost tens of thousands of fsynced files. A
// single agent keeps its key in a certificate store (crypto/certificate_store.hpp) instead.
//
// Errors: RocksDB statuses become `ec::storage_failure` naming the operation and the directory
// (`ec::disk_full` for no space); a database held by another process says so and what to do.
//
// Thread-safety: all member functions may be called concurrently (RocksDB is thread-safe).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "crypto/thumbprint.hpp"

namespace certfleet {

/// A manager registered with an endpoint.
struct manager_record {
  thumbprint manager_thumbprint;
  std::string manager_name;
  int64_t registered_unix_ms = 0;
  /// The certificate the manager registered with (DER). Written by `put_manager` when not empty;
  /// not filled by the listing functions (read it with `manager_certificate`).
  std::vector<uint8_t> certificate_der;
};

/// One named value of one endpoint, for batched writes.
struct endpoint_value {
  uint32_t endpoint = 0;
  std::string name;
  std::string value;
};

class agent_store {
 public:
  /// Opens (creating when missing, mode 0700) the database at `dir`. `read_only` opens without
  /// taking the database lock, so a CLI can read while an agent runs; it sees what the agent has
  /// synced.
  static caf::expected<std::unique_ptr<agent_store>> open(const std::filesystem::path& dir,
                                                          bool read_only = false);
  ~agent_store();
  agent_store(const agent_store&) = delete;
  agent_store& operator=(const agent_store&) = delete;

  // -- managers (synced) --------------------------------------------------------------------
  /// Stores or replaces the record of `r.manager_thumbprint` for `endpoint`.
  caf::error put_manager(uint32_t endpoint, const manager_record& r);
  /// Removes the manager; returns false when it was not registered.
  caf::expected<bool> remove_manager(uint32_t endpoint, const thumbprint& t);
  /// The stored certificate (DER) of a registered manager; empty when the manager is unknown or
  /// was registered by a version that kept only the thumbprint.
  caf::expected<std::optional<std::vector<uint8_t>>> manager_certificate(uint32_t endpoint,
                                                                         const thumbprint& t) const;
  /// The managers of one endpoint, in thumbprint order.
  caf::expected<std::vector<manager_record>> managers(uint32_t endpoint) const;
  /// Every manager of every endpoint, in (endpoint, thumbprint) order.
  caf::error for_each_manager(
      const std::function<void(uint32_t endpoint, const manager_record&)>& fn) const;

  // -- named values -------------------------------------------------------------------------
  /// Writes all `values` in one atomic batch; `sync` makes it durable before returning.
  caf::error put_values(const std::vector<endpoint_value>& values, bool sync);
  caf::expected<std::optional<std::string>> get_value(uint32_t endpoint,
                                                      const std::string& name) const;
  /// Calls `fn` for the value called `name` of every endpoint that has one, in endpoint order.
  caf::error for_each_value(
      const std::string& name,
      const std::function<void(uint32_t endpoint, const std::string& value)>& fn) const;

  // -- meta ---------------------------------------------------------------------------------
  caf::expected<std::optional<std::string>> get_meta(const std::string& key) const;
  /// Synced.
  caf::error put_meta(const std::string& key, const std::string& value);

  const std::filesystem::path& dir() const;

  struct impl;

 private:
  explicit agent_store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace certfleet
