// What a server actor does with the validity period of the certificate its server presents: keep it
// in the server record, report the pinned certificate to the renewal actor's watchlist, and refuse
// an expired or not-yet-valid certificate with a reason the operator can act on
// (docs/lifecycle.md, "Pinned server certificates").
//
// Thread-safety: pure functions of their arguments.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>

#include "actors/server_expiry.hpp"
#include "config/settings.hpp"
#include "protocol/tls_session.hpp"
#include "storage/records.hpp"

namespace certfleet {

/// Copies the validity period of the certificate presented in `tls` into `rec`. Returns true when
/// the record changed.
bool record_validity(server_record& rec, const tls_session& tls);

/// What the renewal actor should watch for `rec`: its pinned certificate, when the server is
/// trusted, presented that certificate and its validity period is known; nullopt otherwise.
std::optional<watched_certificate> watch_of(const server_record& rec);

/// The reason to give when the certificate presented in `tls` is refused for its validity period
/// (expired, or not yet valid, beyond daemon.clock_skew_tolerance_s) at `now_ms`; nullopt when it
/// is within its validity or none was presented.
std::optional<std::string> validity_refusal(const tls_session& tls, const settings& cfg,
                                            int64_t now_ms);

}  // namespace certfleet

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(certfleet::watched_certificate)
