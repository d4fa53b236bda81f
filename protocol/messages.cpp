#include "protocol/messages.hpp"

#include <string_view>
#include <type_traits>

#include "common/bytes.hpp"

namespace certfleet::wire {
namespace {

caf::error too_long(std::string_view what, size_t size, size_t cap) {
  return make_error(ec::invalid_argument, std::string{what} + " is " + std::to_string(size) +
                                              " bytes long; the protocol allows at most " +
                                              std::to_string(cap));
}

// Appends `w`'s bytes to a secret buffer, so that a payload is assembled only in secure memory.
void append(secret_bytes& out, const byte_writer& w) {
  out.insert(out.end(), w.data().begin(), w.data().end());
}

class encoder {
 public:
  explicit encoder(message_type t) {
    w_.u8(protocol_version);
    w_.u8(static_cast<uint8_t>(t));
  }
  bool str(std::string_view field, const std::string& s, size_t cap) {
    if (s.size() > cap) {
      error_ = too_long(field, s.size(), cap);
      return false;
    }
    w_.str(s);
    return true;
  }
  byte_writer& w() { return w_; }
  caf::expected<secret_bytes> finish() {
    if (error_) return std::move(error_);
    secret_bytes out;
    append(out, w_);
    return out;
  }
  caf::error& error() { return error_; }

 private:
  byte_writer w_;
  caf::error error_;
};

caf::expected<secret_bytes> encode_one(const hello& m) {
  encoder e{message_type::hello};
  e.w().u8(m.min_version);
  e.w().u8(m.max_version);
  e.str("hello.peer_name", m.peer_name, max_name_length);
  return e.finish();
}

/// Appends `secret` with its 32-bit length, from secure memory to secure memory: no std::vector
/// ever holds it.
void append_secret(secret_bytes& out, const secret_bytes& secret) {
  auto n = static_cast<uint32_t>(secret.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(n >> shift));
  out.insert(out.end(), secret.begin(), secret.end());
}

caf::expected<secret_bytes> encode_one(const register_request& m) {
  if (m.password.size() > max_password_length)
    return too_long("register_request.password", m.password.size(), max_password_length);
  encoder head{message_type::register_request};
  if (!head.str("register_request.account", m.account, max_name_length))
    return std::move(head.error());
  byte_writer tail;
  tail.raw(m.manager_thumbprint.bytes().data(), thumbprint::size);
  if (m.manager_name.size() > max_name_length)
    return too_long("register_request.manager_name", m.manager_name.size(), max_name_length);
  tail.str(m.manager_name);
  auto out = head.finish();
  if (!out) return out;
  append_secret(*out, m.password);
  append(*out, tail);
  return out;
}

caf::expected<secret_bytes> encode_one(const registered& m) {
  encoder e{message_type::registered};
  e.w().raw(m.server_thumbprint.bytes().data(), thumbprint::size);
  e.str("registered.server_id", m.server_id, max_name_length);
  return e.finish();
}

caf::expected<secret_bytes> encode_one(const denied& m) {
  encoder e{message_type::denied};
  e.w().u8(static_cast<uint8_t>(m.reason));
  e.str("denied.detail", m.detail, max_text_length);
  return e.finish();
}

caf::expected<secret_bytes> encode_one(const collect&) {
  encoder e{message_type::collect};
  return e.finish();
}

caf::expected<secret_bytes> encode_one(const inventory& m) {
  if (m.jobs.size() > max_inventory_jobs)
    return make_error(ec::invalid_argument, "an inventory of " + std::to_string(m.jobs.size()) +
                                                " jobs exceeds the protocol's limit of " +
                                                std::to_string(max_inventory_jobs) +
                                                " jobs per message");
  encoder e{message_type::inventory};
  e.w().u32(static_cast<uint32_t>(m.jobs.size()));
  for (const auto& j : m.jobs) {
    if (!e.str("inventory job name", j.name, max_job_field_length) ||
        !e.str("inventory job type", j.type, max_job_field_length) ||
        !e.str("inventory job last_result", j.last_result, max_job_field_length))
      break;
    e.w().i64(j.last_run_unix_ms);
    e.w().u64(j.size_bytes);
  }
  return e.finish();
}

caf::expected<secret_bytes> encode_one(const ping& m) {
  encoder e{message_type::ping};
  e.w().u64(m.nonce);
  return e.finish();
}

caf::expected<secret_bytes> encode_one(const pong& m) {
  encoder e{message_type::pong};
  e.w().u64(m.nonce);
  return e.finish();
}

caf::expected<secret_bytes> encode_one(const error_message& m) {
  encoder e{message_type::error};
  e.w().u16(m.code);
  e.str("error.text", m.text, max_text_length);
  return e.finish();
}

caf::expected<secret_bytes> encode_one(const rotate_manager_certificate& m) {
  if (m.certificate_der.empty())
    return make_error(ec::invalid_argument, "rotate_manager_certificate needs a certificate");
  if (m.certificate_der.size() > max_certificate_length)
    return too_long("rotate_manager_certificate.certificate", m.certificate_der.size(),
                    max_certificate_length);
  encoder e{message_type::rotate_manager_certificate};
  e.w().u32(static_cast<uint32_t>(m.certificate_der.size()));
  e.w().raw(m.certificate_der.data(), m.certificate_der.size());
  return e.finish();
}

template <message_type T>
caf::expected<secret_bytes> encode_thumb(const thumbprint& t) {
  encoder e{T};
  e.w().raw(t.bytes().data(), thumbprint::size);
  return e.finish();
}

caf::expected<secret_bytes> encode_one(const manager_certificate_stored& m) {
  return encode_thumb<message_type::manager_certificate_stored>(m.stored);
}

caf::expected<secret_bytes> encode_one(const retire_manager_certificate& m) {
  return encode_thumb<message_type::retire_manager_certificate>(m.retired);
}

caf::expected<secret_bytes> encode_one(const manager_certificate_retired& m) {
  return encode_thumb<message_type::manager_certificate_retired>(m.retired);
}

bool is_refusable_rotation_request(uint8_t t) {
  return t == static_cast<uint8_t>(message_type::rotate_manager_certificate) ||
         t == static_cast<uint8_t>(message_type::retire_manager_certificate);
}

caf::expected<secret_bytes> encode_one(const rotation_refused& m) {
  if (!is_refusable_rotation_request(static_cast<uint8_t>(m.request)))
    return make_error(ec::invalid_argument,
                      "rotation_refused answers only message types 32 and 34");
  encoder e{message_type::rotation_refused};
  e.w().u8(static_cast<uint8_t>(m.request));
  e.str("rotation_refused.detail", m.detail, max_text_length);
  return e.finish();
}

caf::expected<secret_bytes> encode_one(const legacy_login& m) {
  if (m.password.size() > max_password_length)
    return too_long("legacy_login.password", m.password.size(), max_password_length);
  encoder head{message_type::legacy_login};
  if (!head.str("legacy_login.account", m.account, max_name_length)) return std::move(head.error());
  auto out = head.finish();
  if (!out) return out;
  append_secret(*out, m.password);
  return out;
}

caf::expected<secret_bytes> encode_one(const legacy_accepted& m) {
  encoder e{message_type::legacy_accepted};
  e.w().raw(m.server_thumbprint.bytes().data(), thumbprint::size);
  e.str("legacy_accepted.server_id", m.server_id, max_name_length);
  return e.finish();
}

// Reads one message's fields; the first failure names the field and stops everything after it.
class decoder {
 public:
  decoder(const uint8_t* data, size_t size, const char* type_name)
      : r_(data, size), type_name_(type_name) {}

  void skip_header() {
    uint8_t ignored;
    r_.u8(ignored);
    r_.u8(ignored);
  }
  void u8(const char* field, uint8_t& x) { check(field, r_.u8(x)); }
  void u16(const char* field, uint16_t& x) { check(field, r_.u16(x)); }
  void u32(const char* field, uint32_t& x) { check(field, r_.u32(x)); }
  void u64(const char* field, uint64_t& x) { check(field, r_.u64(x)); }
  void i64(const char* field, int64_t& x) { check(field, r_.i64(x)); }
  void str(const char* field, std::string& x, size_t cap) {
    if (error_) return;
    if (!r_.str(x, cap))
      fail(std::string{"field '"} + field + "' is truncated or longer than " + std::to_string(cap) +
           " bytes");
  }
  void thumb(const char* field, thumbprint& x) {
    std::array<uint8_t, thumbprint::size> raw{};
    check(field, r_.raw(raw.data(), raw.size()));
    if (!error_) x = thumbprint{raw};
  }
  void secret(const char* field, secret_bytes& x, size_t cap) {
    uint32_t n = 0;
    check(field, r_.u32(n));
    if (error_) return;
    if (n > cap || n > r_.remaining()) {
      fail(std::string{"field '"} + field + "' is truncated or longer than " + std::to_string(cap) +
           " bytes");
      return;
    }
    x.resize(n);
    check(field, r_.raw(x.data(), n));
  }
  /// A u32 length (at most `cap`, and no more than what is left) followed by that many bytes.
  void bytes(const char* field, std::vector<uint8_t>& x, size_t cap) {
    uint32_t n = 0;
    check(field, r_.u32(n));
    if (error_) return;
    if (n == 0 || n > cap || n > r_.remaining()) {
      fail(std::string{"field '"} + field + "' is empty, truncated or longer than " +
           std::to_string(cap) + " bytes");
      return;
    }
    x.resize(n);
    check(field, r_.raw(x.data(), n));
  }
  void fail(std::string why) {
    if (!error_)
      error_ = make_error(ec::protocol_error, std::string{"the peer sent a malformed "} +
                                                  type_name_ + " message: " + std::move(why) +
                                                  "; the connection must be closed");
  }
  bool ok() const { return !error_; }

  template <class T>
  caf::expected<message> finish(T&& value) {
    if (!error_ && !r_.at_end())
      fail(std::to_string(r_.remaining()) + " unexpected bytes follow the last field");
    if (error_) return std::move(error_);
    return message{std::forward<T>(value)};
  }

 private:
  void check(const char* field, bool ok) {
    if (!ok) fail(std::string{"field '"} + field + "' is truncated");
  }
  byte_reader r_;
  const char* type_name_;
  caf::error error_;
};

/// A message whose one field is a thumbprint.
template <class T>
caf::expected<message> decode_thumb(decoder& d, thumbprint T::*field) {
  T m;
  d.thumb("thumbprint", m.*field);
  return d.finish(std::move(m));
}

caf::expected<message> decode_body(message_type t, decoder& d) {
  switch (t) {
    case message_type::hello: {
      hello m;
      d.u8("min_version", m.min_version);
      d.u8("max_version", m.max_version);
      d.str("peer_name", m.peer_name, max_name_length);
      if (d.ok() && m.min_version > m.max_version)
        d.fail("min_version " + std::to_string(m.min_version) + " is above max_version " +
               std::to_string(m.max_version));
      return d.finish(std::move(m));
    }
    case message_type::register_request: {
      register_request m;
      d.str("account", m.account, max_name_length);
      d.secret("password", m.password, max_password_length);
      d.thumb("manager_thumbprint", m.manager_thumbprint);
      d.str("manager_name", m.manager_name, max_name_length);
      return d.finish(std::move(m));
    }
    case message_type::registered: {
      registered m;
      d.thumb("server_thumbprint", m.server_thumbprint);
      d.str("server_id", m.server_id, max_name_length);
      return d.finish(std::move(m));
    }
    case message_type::denied: {
      denied m;
      uint8_t reason = 0;
      d.u8("reason", reason);
      if (d.ok() && (reason < static_cast<uint8_t>(denial_reason::bad_credentials) ||
                     reason > static_cast<uint8_t>(last_denial_reason)))
        d.fail("reason " + std::to_string(reason) + " is not a known denial reason");
      m.reason = static_cast<denial_reason>(reason);
      d.str("detail", m.detail, max_text_length);
      return d.finish(std::move(m));
    }
    case message_type::collect:
      return d.finish(collect{});
    case message_type::inventory: {
      inventory m;
      uint32_t count = 0;
      d.u32("job_count", count);
      if (d.ok() && count > max_inventory_jobs)
        d.fail("job_count " + std::to_string(count) + " is above the limit of " +
               std::to_string(max_inventory_jobs));
      // No reserve(count): the count is the peer's claim; the vector grows with jobs actually read.
      for (uint32_t i = 0; d.ok() && i < count; ++i) {
        job_summary j;
        d.str("job.name", j.name, max_job_field_length);
        d.str("job.type", j.type, max_job_field_length);
        d.str("job.last_result", j.last_result, max_job_field_length);
        d.i64("job.last_run", j.last_run_unix_ms);
        d.u64("job.size_bytes", j.size_bytes);
        if (d.ok()) m.jobs.push_back(std::move(j));
      }
      return d.finish(std::move(m));
    }
    case message_type::ping: {
      ping m;
      d.u64("nonce", m.nonce);
      return d.finish(std::move(m));
    }
    case message_type::pong: {
      pong m;
      d.u64("nonce", m.nonce);
      return d.finish(std::move(m));
    }
    case message_type::error: {
      error_message m;
      d.u16("code", m.code);
      d.str("text", m.text, max_text_length);
      return d.finish(std::move(m));
    }
    case message_type::rotate_manager_certificate: {
      rotate_manager_certificate m;
      d.bytes("certificate", m.certificate_der, max_certificate_length);
      return d.finish(std::move(m));
    }
    case message_type::manager_certificate_stored:
      return decode_thumb<manager_certificate_stored>(d, &manager_certificate_stored::stored);
    case message_type::retire_manager_certificate:
      return decode_thumb<retire_manager_certificate>(d, &retire_manager_certificate::retired);
    case message_type::manager_certificate_retired:
      return decode_thumb<manager_certificate_retired>(d, &manager_certificate_retired::retired);
    case message_type::rotation_refused: {
      rotation_refused m;
      uint8_t request = 0;
      d.u8("request", request);
      if (d.ok() && !is_refusable_rotation_request(request))
        d.fail("request " + std::to_string(request) + " is not a rotation request (32 or 34)");
      m.request = static_cast<message_type>(request);
      d.str("detail", m.detail, max_text_length);
      return d.finish(std::move(m));
    }
    case message_type::legacy_login: {
      legacy_login m;
      d.str("account", m.account, max_name_length);
      d.secret("password", m.password, max_password_length);
      return d.finish(std::move(m));
    }
    case message_type::legacy_accepted: {
      legacy_accepted m;
      d.thumb("server_thumbprint", m.server_thumbprint);
      d.str("server_id", m.server_id, max_name_length);
      return d.finish(std::move(m));
    }
  }
  return make_error(ec::protocol_error, "unreachable message type");
}

bool known_type(uint8_t t) {
  return (t >= static_cast<uint8_t>(message_type::hello) &&
          t <= static_cast<uint8_t>(message_type::error)) ||
         (t >= static_cast<uint8_t>(message_type::rotate_manager_certificate) &&
          t <= static_cast<uint8_t>(message_type::rotation_refused)) ||
         (t >= static_cast<uint8_t>(message_type::legacy_login) &&
          t <= static_cast<uint8_t>(message_type::legacy_accepted));
}

}  // namespace

const char* to_string(denial_reason r) {
  switch (r) {
    case denial_reason::bad_credentials:
      return "bad_credentials";
    case denial_reason::insufficient_role:
      return "insufficient_role";
    case denial_reason::thumbprint_mismatch:
      return "thumbprint_mismatch";
    case denial_reason::locked_out:
      return "locked_out";
    case denial_reason::not_accepting:
      return "not_accepting";
    case denial_reason::internal_error:
      return "internal_error";
    case denial_reason::not_registered:
      return "not_registered";
    case denial_reason::manager_revoked:
      return "manager_revoked";
    case denial_reason::protocol_violation:
      return "protocol_violation";
    case denial_reason::unsupported_version:
      return "unsupported_version";
    case denial_reason::certificate_changed:
      return "certificate_changed";
  }
  return "unknown";
}

const char* to_string(message_type t) {
  switch (t) {
    case message_type::hello:
      return "hello";
    case message_type::register_request:
      return "register_request";
    case message_type::registered:
      return "registered";
    case message_type::denied:
      return "denied";
    case message_type::collect:
      return "collect";
    case message_type::inventory:
      return "inventory";
    case message_type::ping:
      return "ping";
    case message_type::pong:
      return "pong";
    case message_type::error:
      return "error";
    case message_type::rotate_manager_certificate:
      return "rotate_manager_certificate";
    case message_type::manager_certificate_stored:
      return "manager_certificate_stored";
    case message_type::retire_manager_certificate:
      return "retire_manager_certificate";
    case message_type::manager_certificate_retired:
      return "manager_certificate_retired";
    case message_type::rotation_refused:
      return "rotation_refused";
    case message_type::legacy_login:
      return "legacy_login";
    case message_type::legacy_accepted:
      return "legacy_accepted";
  }
  return "unknown";
}

// The variant lists the types in wire order: the first nine have the type number index + 1, the
// rotation messages from index 9 on start at type 32; the assertions keep the two from drifting
// apart.
static_assert(std::is_same_v<std::variant_alternative_t<0, message>, hello>);
static_assert(std::is_same_v<std::variant_alternative_t<1, message>, register_request>);
static_assert(std::is_same_v<std::variant_alternative_t<2, message>, registered>);
static_assert(std::is_same_v<std::variant_alternative_t<3, message>, denied>);
static_assert(std::is_same_v<std::variant_alternative_t<4, message>, collect>);
static_assert(std::is_same_v<std::variant_alternative_t<5, message>, inventory>);
static_assert(std::is_same_v<std::variant_alternative_t<6, message>, ping>);
static_assert(std::is_same_v<std::variant_alternative_t<7, message>, pong>);
static_assert(std::is_same_v<std::variant_alternative_t<8, message>, error_message>);
static_assert(std::is_same_v<std::variant_alternative_t<9, message>, rotate_manager_certificate>);
static_assert(std::is_same_v<std::variant_alternative_t<13, message>, rotation_refused>);
static_assert(std::is_same_v<std::variant_alternative_t<14, message>, legacy_login>);
static_assert(std::is_same_v<std::variant_alternative_t<15, message>, legacy_accepted>);
static_assert(std::variant_size_v<message> == 16);

message_type type_of(const message& m) {
  constexpr size_t first_rotation_index = static_cast<size_t>(message_type::error);
  constexpr size_t first_legacy_index = 14;
  if (m.index() < first_rotation_index) return static_cast<message_type>(m.index() + 1);
  if (m.index() >= first_legacy_index)
    return static_cast<message_type>(m.index() - first_legacy_index +
                                     static_cast<size_t>(message_type::legacy_login));
  return static_cast<message_type>(m.index() - first_rotation_index +
                                   static_cast<size_t>(message_type::rotate_manager_certificate));
}

bool exists_in(message_type t, uint8_t version) {
  auto n = static_cast<uint8_t>(t);
  if (t == message_type::register_request || t == message_type::registered ||
      (n >= first_reserved_rotation_type && n <= last_reserved_rotation_type))
    return version == protocol_version;
  if (n >= first_legacy_type && n <= last_legacy_type) return version == legacy_protocol_version;
  return version >= min_protocol_version && version <= protocol_version;
}

caf::expected<secret_bytes> encode(const message& m, uint8_t version) {
  auto t = type_of(m);
  if (!exists_in(t, version))
    return make_error(ec::invalid_argument, std::string{to_string(t)} +
                                                " does not exist in protocol version " +
                                                std::to_string(version));
  auto out = std::visit([](const auto& x) { return encode_one(x); }, m);
  if (out) (*out)[0] = version;
  return out;
}

caf::expected<message> decode(const uint8_t* data, size_t size, uint8_t min_version,
                              uint8_t max_version) {
  if (size < 2)
    return make_error(ec::protocol_error,
                      "the peer sent a " + std::to_string(size) +
                          "-byte message, shorter than the 2-byte version and type header; the "
                          "connection must be closed");
  uint8_t v = data[0];
  uint8_t t = data[1];
  bool is_hello = t == static_cast<uint8_t>(message_type::hello);
  if (is_hello ? (v < min_protocol_version || v > protocol_version)
               : (v < min_version || v > max_version))
    return make_error(
        ec::protocol_error,
        "the peer speaks protocol version " + std::to_string(v) + ", this side " +
            (min_version == max_version
                 ? "only version " + std::to_string(max_version)
                 : "versions " + std::to_string(min_version) + ".." + std::to_string(max_version)) +
            "; upgrade the older side");
  if (!known_type(t)) {
    if (t >= first_reserved_rotation_type && t <= last_reserved_rotation_type)
      return make_error(ec::protocol_error,
                        "the peer sent certificate rotation message type " + std::to_string(t) +
                            ", which this build does not support yet; upgrade this side");
    return make_error(ec::protocol_error, "the peer sent unknown message type " +
                                              std::to_string(t) +
                                              "; the connection must be closed");
  }
  auto type = static_cast<message_type>(t);
  if (!exists_in(type, v))
    return make_error(ec::protocol_error, std::string{"the peer sent "} + to_string(type) +
                                              ", which protocol version " + std::to_string(v) +
                                              " does not have; the connection must be closed");
  decoder d{data, size, to_string(type)};
  d.skip_header();
  return decode_body(type, d);
}

bool operator==(const hello& a, const hello& b) {
  return a.min_version == b.min_version && a.max_version == b.max_version &&
         a.peer_name == b.peer_name;
}
bool operator==(const register_request& a, const register_request& b) {
  return a.account == b.account && a.password == b.password &&
         a.manager_thumbprint == b.manager_thumbprint && a.manager_name == b.manager_name;
}
bool operator==(const registered& a, const registered& b) {
  return a.server_thumbprint == b.server_thumbprint && a.server_id == b.server_id;
}
bool operator==(const denied& a, const denied& b) {
  return a.reason == b.reason && a.detail == b.detail;
}
bool operator==(const collect&, const collect&) {
  return true;
}
bool operator==(const job_summary& a, const job_summary& b) {
  return a.name == b.name && a.type == b.type && a.last_result == b.last_result &&
         a.last_run_unix_ms == b.last_run_unix_ms && a.size_bytes == b.size_bytes;
}
bool operator==(const inventory& a, const inventory& b) {
  return a.jobs == b.jobs;
}
bool operator==(const ping& a, const ping& b) {
  return a.nonce == b.nonce;
}
bool operator==(const pong& a, const pong& b) {
  return a.nonce == b.nonce;
}
bool operator==(const error_message& a, const error_message& b) {
  return a.code == b.code && a.text == b.text;
}
bool operator==(const rotate_manager_certificate& a, const rotate_manager_certificate& b) {
  return a.certificate_der == b.certificate_der;
}
bool operator==(const manager_certificate_stored& a, const manager_certificate_stored& b) {
  return a.stored == b.stored;
}
bool operator==(const retire_manager_certificate& a, const retire_manager_certificate& b) {
  return a.retired == b.retired;
}
bool operator==(const manager_certificate_retired& a, const manager_certificate_retired& b) {
  return a.retired == b.retired;
}
bool operator==(const rotation_refused& a, const rotation_refused& b) {
  return a.request == b.request && a.detail == b.detail;
}
bool operator==(const legacy_login& a, const legacy_login& b) {
  return a.account == b.account && a.password == b.password;
}
bool operator==(const legacy_accepted& a, const legacy_accepted& b) {
  return a.server_thumbprint == b.server_thumbprint && a.server_id == b.server_id;
}

}  // namespace certfleet::wire
