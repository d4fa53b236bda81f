// Salted, deliberately slow password hashes for the accounts of a backup-server agent.
//
// The encoded form is the PHC string of Argon2id, the same text the reference `argon2` tool and
// Botan's `argon2_generate_pwhash` produce:
//   $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt, base64 without padding>$<hash, same>
// The parameters travel with the hash, so a hash made with one cost profile is verified with the
// parameters it was made with, and profiles can change without invalidating stored hashes.
//
// Cost profiles:
//   interactive  Argon2id, m = 19 MiB, t = 2, p = 1 (OWASP's recommendation): tens of milliseconds
//                and 19 MiB per verification. The default for a real agent.
//   simulation   Argon2id, m = 8 KiB, t = 1, p = 1: microseconds. ONLY for simulated fleets of
//                thousands of endpoints on one machine; such a hash offers next to no protection
//                against guessing if the accounts file leaks.
//
// Failures: hashing fails with `ec::crypto_failure` only if Botan does. Verification distinguishes
// a wrong password (`false`) from an encoded hash that is malformed or tampered with
// (`ec::corrupt_data`: wrong algorithm, version, parameters outside sane bounds, bad base64, wrong
// salt or hash length), so a corrupted accounts file is reported rather than silently locking
// everyone out. Parameters are bounded before any memory is allocated (m <= 1 GiB, t <= 16,
// p <= 8), so an edited file cannot make the agent allocate without limit.
//
// Thread-safety: pure functions; safe to call from any thread.
#pragma once

#include <string>

#include "common/error.hpp"
#include "crypto/secret.hpp"

namespace certfleet {

enum class hash_profile { interactive, simulation };

/// "interactive" or "simulation".
const char* to_string(hash_profile p);

/// Parses "interactive" or "simulation"; `ec::invalid_argument` otherwise.
caf::expected<hash_profile> parse_hash_profile(const std::string& text);

/// Hashes `password` with a fresh 16-byte random salt; returns the PHC string.
caf::expected<std::string> hash_password(const secret_bytes& password,
                                         hash_profile profile = hash_profile::interactive);

/// True when `password` matches `encoded`, false when it does not (constant-time comparison);
/// `ec::corrupt_data` when `encoded` is not a well-formed Argon2id PHC string within bounds.
caf::expected<bool> verify_password(const secret_bytes& password, const std::string& encoded);

}  // namespace certfleet
