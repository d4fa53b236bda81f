#include "storage/records.hpp"

#include <array>

#include "common/bytes.hpp"

namespace certfleet {

namespace {

constexpr uint8_t record_format_version = 1;
// Server records: version 2 adds the certificate's validity, the expiry warning and the
// authentication kind after the version-1 fields; version 1 records still decode (with defaults).
constexpr uint8_t server_record_format_version = 2;

// Free-text fields (event details, last errors) may be long; everything else is short.
constexpr size_t max_text_len = 16u << 20;

void put_thumbprint(byte_writer& w, const std::optional<thumbprint>& t) {
  if (!t) {
    w.u8(0);
    return;
  }
  w.u8(1);
  w.raw(t->bytes().data(), thumbprint::size);
}

bool get_thumbprint(byte_reader& r, std::optional<thumbprint>& out) {
  uint8_t present = 0;
  if (!r.u8(present) || present > 1) return false;
  if (present == 0) {
    out.reset();
    return true;
  }
  std::array<uint8_t, thumbprint::size> raw{};
  if (!r.raw(raw.data(), raw.size())) return false;
  out = thumbprint(raw);
  return true;
}

// Decoding failures share one shape so storage can prefix them with the key and path.
caf::error decode_failure(const char* what, const byte_reader& r, size_t total) {
  if (r.failed())
    return make_error(ec::corrupt_data, std::string(what) + " is truncated or malformed (" +
                                            std::to_string(total) +
                                            " bytes); restore the database from a backup");
  return make_error(ec::corrupt_data, std::string(what) + " has " + std::to_string(r.remaining()) +
                                          " unexpected trailing bytes; restore the database from a "
                                          "backup or use the certfleet version that wrote it");
}

caf::error check_version(const char* what, const std::vector<uint8_t>& bytes,
                         uint8_t oldest = record_format_version,
                         uint8_t newest = record_format_version) {
  if (bytes.empty())
    return make_error(ec::corrupt_data,
                      std::string(what) + " is empty; restore the database from a backup");
  if (bytes[0] < oldest || bytes[0] > newest)
    return make_error(ec::corrupt_data,
                      std::string(what) + " has format version " + std::to_string(bytes[0]) +
                          " but this build reads version " + std::to_string(newest) +
                          (oldest < newest ? " and older" : "") +
                          "; use the certfleet version that wrote it");
  return {};
}

}  // namespace

const char* to_string(server_state s) {
  switch (s) {
    case server_state::pending_registration:
      return "pending_registration";
    case server_state::registering:
      return "registering";
    case server_state::awaiting_validation:
      return "awaiting_validation";
    case server_state::trusted:
      return "trusted";
    case server_state::certificate_changed:
      return "certificate_changed";
    case server_state::certificate_mismatch:
      return "certificate_mismatch";
    case server_state::auth_failed:
      return "auth_failed";
    case server_state::removed:
      return "removed";
    case server_state::reregistration_required:
      return "reregistration_required";
  }
  return "unknown";
}

const char* to_string(server_auth a) {
  switch (a) {
    case server_auth::certificates:
      return "certificates";
    case server_auth::legacy_credentials:
      return "credentials (legacy)";
  }
  return "unknown";
}

caf::expected<server_state> parse_server_state(const std::string& s) {
  for (uint8_t v = static_cast<uint8_t>(server_state::pending_registration);
       v <= static_cast<uint8_t>(server_state::reregistration_required); ++v) {
    auto st = static_cast<server_state>(v);
    if (s == to_string(st)) return st;
  }
  return make_error(ec::invalid_argument,
                    "unknown server state '" + s +
                        "'; expected one of pending_registration, registering, "
                        "awaiting_validation, trusted, certificate_changed, certificate_mismatch, "
                        "auth_failed, removed, reregistration_required");
}

std::vector<uint8_t> encode(const server_record& r) {
  byte_writer w;
  w.u8(server_record_format_version);
  w.str(r.id);
  w.str(r.name);
  w.str(r.host);
  w.u16(r.port);
  w.u8(static_cast<uint8_t>(r.state));
  w.str(r.account);
  put_thumbprint(w, r.expected);
  put_thumbprint(w, r.presented);
  put_thumbprint(w, r.pinned);
  w.str(r.validated_by);
  w.str(r.remote_id);
  w.str(r.last_error);
  w.i64(r.created_ms);
  w.i64(r.updated_ms);
  w.i64(r.last_seen_ms);
  w.i64(r.last_collection_ms);
  w.u32(r.failed_attempts);
  w.i64(r.certificate_not_before_ms);
  w.i64(r.certificate_not_after_ms);
  put_thumbprint(w, r.expiry_warned);
  w.u8(static_cast<uint8_t>(r.auth));
  return w.take();
}

caf::expected<server_record> decode_server_record(const std::vector<uint8_t>& bytes) {
  static constexpr const char* what = "server record";
  if (auto err = check_version(what, bytes, 1, server_record_format_version)) return err;
  byte_reader r(bytes);
  server_record out;
  uint8_t version = 0;
  uint8_t state = 0;
  uint8_t auth = 0;
  bool ok = r.u8(version) && r.str(out.id) && r.str(out.name) && r.str(out.host) &&
            r.u16(out.port) && r.u8(state) && r.str(out.account) &&
            get_thumbprint(r, out.expected) && get_thumbprint(r, out.presented) &&
            get_thumbprint(r, out.pinned) && r.str(out.validated_by) && r.str(out.remote_id) &&
            r.str(out.last_error, max_text_len) && r.i64(out.created_ms) && r.i64(out.updated_ms) &&
            r.i64(out.last_seen_ms) && r.i64(out.last_collection_ms) && r.u32(out.failed_attempts);
  if (ok && version >= 2)
    ok = r.i64(out.certificate_not_before_ms) && r.i64(out.certificate_not_after_ms) &&
         get_thumbprint(r, out.expiry_warned) && r.u8(auth);
  if (!ok || !r.at_end()) return decode_failure(what, r, bytes.size());
  if (auth > static_cast<uint8_t>(server_auth::legacy_credentials))
    return make_error(ec::corrupt_data,
                      "server record '" + out.id + "' has unknown authentication kind " +
                          std::to_string(auth) + "; use the certfleet version that wrote it");
  out.auth = static_cast<server_auth>(auth);
  if (state < static_cast<uint8_t>(server_state::pending_registration) ||
      state > static_cast<uint8_t>(server_state::reregistration_required))
    return make_error(ec::corrupt_data, "server record '" + out.id + "' has unknown state " +
                                            std::to_string(state) +
                                            "; use the certfleet version that wrote it");
  out.state = static_cast<server_state>(state);
  return out;
}

std::vector<uint8_t> encode(const event_record& e) {
  byte_writer w;
  w.u8(record_format_version);
  w.u64(e.seq);
  w.i64(e.time_ms);
  w.str(e.type);
  w.str(e.server_id);
  w.str(e.address);
  w.str(e.details);
  return w.take();
}

caf::expected<event_record> decode_event_record(const std::vector<uint8_t>& bytes) {
  static constexpr const char* what = "event record";
  if (auto err = check_version(what, bytes)) return err;
  byte_reader r(bytes);
  event_record out;
  uint8_t version = 0;
  bool ok = r.u8(version) && r.u64(out.seq) && r.i64(out.time_ms) && r.str(out.type) &&
            r.str(out.server_id) && r.str(out.address) && r.str(out.details, max_text_len);
  if (!ok || !r.at_end()) return decode_failure(what, r, bytes.size());
  return out;
}

}  // namespace certfleet
