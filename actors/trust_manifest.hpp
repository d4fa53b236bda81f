// Trusting servers from a fleet manifest: the rule behind `server.trust_manifest` (and `certfleet
// server trust --all-matching-manifest`). A manifest lists addresses with the thumbprint each
// endpoint's certificate was verified to have out of band; a server is trusted when its address
// and the thumbprint it presented both match an entry, and never otherwise.
//
// Outcomes per matched server: `trusted`; `already_trusted` (pinned to the same thumbprint);
// `not_presented` (no certificate presented yet: run it again later); `mismatch` (it presented
// another thumbprint: not trusted, a security finding); `error` (the manager refused, e.g.
// `invalid_state`). Entries that match no server are reported as unmatched.
//
// Thread-safety: `apply_trust_manifest` blocks on the manager (one request per matched server);
// call it from outside actors, like every `manager` call.
#pragma once

#include <string>
#include <vector>

#include "actors/manager.hpp"
#include "common/error.hpp"
#include "crypto/thumbprint.hpp"

namespace certfleet {

struct trust_manifest_entry {
  std::string host;
  uint16_t port = 0;
  thumbprint sha256;
};

enum class manifest_outcome { trusted, already_trusted, not_presented, mismatch, error };

const char* to_string(manifest_outcome o);

struct manifest_result {
  std::string server_id;
  std::string address;  // normalised (common/address.hpp)
  manifest_outcome outcome = manifest_outcome::error;
  std::string message;  // why, for not_presented and mismatch
  caf::error error;     // for `error`
};

struct manifest_report {
  std::vector<manifest_result> results;  // one per matched server, in the manager's list order
  size_t trusted = 0;
  size_t already_trusted = 0;
  size_t skipped = 0;  // not_presented and mismatch
  size_t failed = 0;
  std::vector<std::string> unmatched;  // normalised addresses of entries no server has
};

/// Applies `entries` to the fleet of `m`, trusting as `validated_by` ("admin (uid N)"). Addresses
/// are compared in normal form. Fails only when the fleet cannot be listed.
caf::expected<manifest_report> apply_trust_manifest(
    manager& m, const std::vector<trust_manifest_entry>& entries, const std::string& validated_by);

}  // namespace certfleet
