// Which manager certificate the daemon presents to which server: the current identity, and during
// a rotation (docs/lifecycle.md, "Rotating the manager certificate") the previous one for every
// server that has not yet acknowledged the new certificate. The daemon never presents a
// certificate to an agent that has not stored it: a server of the rotation gets the new identity
// only after the rotation actor durably recorded its acknowledgement (`moved`).
//
// The rotation actor is the only writer; server actors read it for every connection they make.
// Thread-safety: every member may be called concurrently (one mutex, held for a lookup or a copy).
#pragma once

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crypto/identity.hpp"

namespace certfleet {

class manager_identities {
 public:
  explicit manager_identities(identity current) : current_(std::move(current)) {}
  manager_identities(const manager_identities&) = delete;
  manager_identities& operator=(const manager_identities&) = delete;

  /// The newest identity: what registrations and every server outside a rotation use.
  identity current() const;
  /// The identity a rotation replaces, while the daemon still presents it to someone.
  std::optional<identity> previous() const;
  /// The identity to present to server `id`.
  identity for_server(const std::string& id) const;
  /// The certificate server `id` must still be sent (it has not acknowledged it yet).
  std::optional<identity> successor_for(const std::string& id) const;
  /// The certificate the agent of server `id` is to forget (the rotation is over, it moved).
  std::optional<thumbprint> drop_owed(const std::string& id) const;

  // -- the rotation actor ----------------------------------------------------------------------
  /// A rotation from `previous` to `current` starts (or resumes): `pending` still get `previous`.
  void begin(identity previous, identity current, std::set<std::string> pending);
  /// Server `id` registered the previous certificate after the rotation began: it keeps getting
  /// it until it moves. No effect once the previous identity is retired.
  void join(const std::string& id);
  /// These servers acknowledged the new certificate: they get it from now on.
  void moved(const std::vector<std::string>& ids);
  /// The previous identity is retired; `owed` still have to be told to drop `retired`.
  void retire(const thumbprint& retired, std::set<std::string> owed);
  /// The agent of `id` dropped the retired certificate.
  void dropped(const std::string& id);

 private:
  mutable std::mutex mtx_;
  identity current_;
  std::optional<identity> previous_;
  std::set<std::string> pending_;
  std::optional<thumbprint> retired_;
  std::set<std::string> owed_;
};

}  // namespace certfleet
