// The durable record of a manager certificate rotation (docs/lifecycle.md, "Rotating the manager
// certificate") and its bookkeeping, as plain values: which servers registered the old
// certificate, which of them hold the new one ("moved"), which still owe the agent a notice to
// drop the old one, and the phase. The rotation actor (actors/rotation_actor.hpp) owns the one
// live instance and stores it in the database's meta family under `rotation_record_key` after
// every change, in the same batch as the change's event.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace certfleet {

inline constexpr const char* rotation_record_key = "rotation.manager_certificate";

enum class rotation_phase {
  /// The new certificate is being sent to every server that registered the old one.
  rolling_out,
  /// Every server moved, or the old certificate expired: the old key is being retired.
  retiring,
  /// The old key is gone; agents are told to drop the old certificate as they connect.
  completed,
  /// The daemon stopped before the new identity was stored: nothing was rolled out.
  abandoned,
};

const char* to_string(rotation_phase p);

struct rotation_record {
  rotation_phase phase = rotation_phase::rolling_out;
  std::string old_thumbprint;  // SHA-256, uppercase hex
  std::string new_thumbprint;
  int64_t old_not_after_s = 0;  // unix seconds
  int64_t started_ms = 0;
  int64_t completed_ms = 0;
  /// Every server of the rotation -> when it moved (unix ms), 0 while pending.
  std::map<std::string, int64_t> servers;
  /// Moved servers whose agent has not yet confirmed it dropped the old certificate.
  std::set<std::string> drop_owed;
  /// Servers still pending when the old certificate expired (sent to reregistration_required).
  std::vector<std::string> missed;

  bool active() const {
    return phase == rotation_phase::rolling_out || phase == rotation_phase::retiring;
  }
  size_t moved_count() const;
  std::vector<std::string> pending() const;
  bool is_pending(const std::string& id) const;
  /// Marks `id` moved at `now_ms`; false when it is not part of the rotation or already moved.
  bool mark_moved(const std::string& id, int64_t now_ms);
  /// Removes a server that no longer exists; true when it was part of the rotation.
  bool forget(const std::string& id);
  /// True from the first second after the old certificate's notAfter.
  bool old_expired(int64_t now_ms) const { return now_ms / 1000 > old_not_after_s; }
  /// Rolling out and nothing left to wait for: every server moved, or the old one expired.
  bool ready_to_retire(int64_t now_ms) const;
};

/// JSON text with a version field; decoding an unknown version or malformed text fails with
/// `ec::corrupt_data`.
std::string encode_rotation_record(const rotation_record& r);
caf::expected<rotation_record> decode_rotation_record(const std::string& text);

}  // namespace certfleet
