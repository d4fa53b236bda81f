// Crypto for the manager certificate rotation (docs/lifecycle.md, "Rotating the manager
// certificate"): the agent's check of a successor certificate offered by a registered manager, and
// the manager's unrecoverable retirement of the replaced identity's private key.
//
// Failures are `caf::error`s naming what is wrong; no Botan type crosses this header.
// Thread-safety: stateless functions; `retire_previous_identity` must not run concurrently with
// another writer of the same certificate store.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "common/error.hpp"
#include "crypto/certificate_store.hpp"
#include "crypto/thumbprint.hpp"

namespace certfleet {

/// Checks a manager certificate offered as the successor of a registered one: an X.509
/// certificate with an ECDSA P-256 key, validly self-signed by that key, valid at `now` (notBefore
/// may lie up to `skew` in the future). Returns its SHA-256 thumbprint; `ec::invalid_argument` with
/// the reason otherwise.
caf::expected<thumbprint> check_successor_certificate(const std::vector<uint8_t>& der,
                                                      std::chrono::system_clock::time_point now,
                                                      std::chrono::seconds skew);

/// Deletes the store's previous identity when it is the one with thumbprint `expected`: its key
/// file is overwritten with zeros, fsynced, then unlinked, its certificate and name files are
/// removed, then the `previous` pointer, and the directory is fsynced. No other copy of the key is
/// left: the store writes each file once, atomically, so the key never had a second inode.
/// Idempotent: with no previous identity, or one with another thumbprint, nothing is deleted and
/// the answer is false; true when this call retired it.
caf::expected<bool> retire_previous_identity(const certificate_store& store,
                                             const thumbprint& expected);

/// Deletes an identity file unrecoverably as above (overwrite, fsync, unlink, fsync of the
/// directory). A missing file is not an error.
caf::error scrub_file(const std::filesystem::path& file);

}  // namespace certfleet
