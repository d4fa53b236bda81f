#include "storage/records.hpp"

#include <array>

#include <gtest/gtest.h>

namespace certfleet {
namespace {

thumbprint make_thumbprint(uint8_t seed) {
  std::array<uint8_t, 32> raw{};
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(seed + i * 7);
  return thumbprint(raw);
}

server_record full_record() {
  server_record r;
  r.id = "s-1f3a9c2e";
  r.name = "backup-07";
  r.host = "10.1.2.7";
  r.port = 9401;
  r.state = server_state::trusted;
  r.account = "certfleet-reg";
  r.expected = make_thumbprint(1);
  r.presented = make_thumbprint(2);
  r.pinned = make_thumbprint(3);
  r.validated_by = "admin";
  r.remote_id = "REMOTE-42";
  r.last_error = "connection refused";
  r.created_ms = 1700000000000;
  r.updated_ms = 1700000000500;
  r.last_seen_ms = -5;  // negative values must survive the unsigned wire form
  r.last_collection_ms = 1700000009999;
  r.failed_attempts = 3;
  r.certificate_not_before_ms = 1690000000000;
  r.certificate_not_after_ms = 1790000000000;
  r.expiry_warned = make_thumbprint(3);
  r.auth = server_auth::legacy_credentials;
  return r;
}

void expect_same(const server_record& a, const server_record& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.host, b.host);
  EXPECT_EQ(a.port, b.port);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.account, b.account);
  EXPECT_EQ(a.expected.has_value(), b.expected.has_value());
  if (a.expected && b.expected) {
    EXPECT_TRUE(*a.expected == *b.expected);
  }
  EXPECT_EQ(a.presented.has_value(), b.presented.has_value());
  if (a.presented && b.presented) {
    EXPECT_TRUE(*a.presented == *b.presented);
  }
  EXPECT_EQ(a.pinned.has_value(), b.pinned.has_value());
  if (a.pinned && b.pinned) {
    EXPECT_TRUE(*a.pinned == *b.pinned);
  }
  EXPECT_EQ(a.validated_by, b.validated_by);
  EXPECT_EQ(a.remote_id, b.remote_id);
  EXPECT_EQ(a.last_error, b.last_error);
  EXPECT_EQ(a.created_ms, b.created_ms);
  EXPECT_EQ(a.updated_ms, b.updated_ms);
  EXPECT_EQ(a.last_seen_ms, b.last_seen_ms);
  EXPECT_EQ(a.last_collection_ms, b.last_collection_ms);
  EXPECT_EQ(a.failed_attempts, b.failed_attempts);
  EXPECT_EQ(a.certificate_not_before_ms, b.certificate_not_before_ms);
  EXPECT_EQ(a.certificate_not_after_ms, b.certificate_not_after_ms);
  EXPECT_EQ(a.expiry_warned.has_value(), b.expiry_warned.has_value());
  if (a.expiry_warned && b.expiry_warned) {
    EXPECT_TRUE(*a.expiry_warned == *b.expiry_warned);
  }
  EXPECT_EQ(a.auth, b.auth);
}

TEST(server_record_encoding, a_version_1_record_decodes_without_certificate_dates_or_legacy_auth) {
  auto r = full_record();
  auto bytes = encode(r);
  // The version-2 tail: two i64 dates, the warned thumbprint (1 + 32 bytes) and the auth byte.
  bytes.resize(bytes.size() - (8 + 8 + 1 + 32 + 1));
  bytes[0] = 1;
  auto back = decode_server_record(bytes);
  ASSERT_TRUE(back) << describe(back.error());
  EXPECT_EQ(back->id, r.id);
  EXPECT_EQ(back->failed_attempts, r.failed_attempts);
  EXPECT_EQ(back->certificate_not_after_ms, 0);
  EXPECT_FALSE(back->expiry_warned);
  EXPECT_EQ(back->auth, server_auth::certificates);
}

TEST(server_record_encoding, round_trips_with_every_optional_field_set) {
  auto r = full_record();
  auto bytes = encode(r);
  ASSERT_EQ(bytes.at(0), 2) << "the first byte is the format version";
  auto back = decode_server_record(bytes);
  ASSERT_TRUE(back) << describe(back.error());
  expect_same(r, *back);
}

TEST(server_record_encoding, round_trips_with_every_optional_field_unset) {
  server_record r;
  r.id = "s-00000001";
  r.state = server_state::pending_registration;
  auto back = decode_server_record(encode(r));
  ASSERT_TRUE(back) << describe(back.error());
  expect_same(r, *back);
  EXPECT_FALSE(back->expected);
  EXPECT_FALSE(back->presented);
  EXPECT_FALSE(back->pinned);
}

TEST(server_record_encoding, an_unknown_format_version_is_corrupt_data) {
  auto bytes = encode(full_record());
  bytes[0] = 3;
  auto back = decode_server_record(bytes);
  ASSERT_FALSE(back);
  EXPECT_EQ(code_of(back.error()), ec::corrupt_data);
  EXPECT_NE(describe(back.error()).find("version 3"), std::string::npos) << describe(back.error());
}

TEST(server_record_encoding, every_truncation_is_corrupt_data) {
  auto bytes = encode(full_record());
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    auto back = decode_server_record(cut);
    ASSERT_FALSE(back) << "a record cut to " << n << " bytes decoded";
    EXPECT_EQ(code_of(back.error()), ec::corrupt_data);
  }
}

TEST(server_record_encoding, trailing_bytes_are_corrupt_data) {
  auto bytes = encode(full_record());
  bytes.push_back(0);
  auto back = decode_server_record(bytes);
  ASSERT_FALSE(back);
  EXPECT_EQ(code_of(back.error()), ec::corrupt_data);
  EXPECT_NE(describe(back.error()).find("trailing"), std::string::npos) << describe(back.error());
}

TEST(server_record_encoding, an_unknown_state_or_presence_byte_is_corrupt_data) {
  server_record r;
  r.id = "s-1";
  auto bytes = encode(r);
  // version(1) + id(4+3) + name(4) + host(4) + port(2) = offset of the state byte
  const size_t state_at = 1 + 7 + 4 + 4 + 2;
  auto bad_state = bytes;
  bad_state[state_at] = 99;
  auto a = decode_server_record(bad_state);
  ASSERT_FALSE(a);
  EXPECT_EQ(code_of(a.error()), ec::corrupt_data);
  auto bad_presence = bytes;
  bad_presence[state_at + 1 + 4] = 2;  // after the state byte and the empty account
  auto b = decode_server_record(bad_presence);
  ASSERT_FALSE(b);
  EXPECT_EQ(code_of(b.error()), ec::corrupt_data);
}

TEST(event_record_encoding, round_trips_and_rejects_bad_versions_truncation_and_trailing_bytes) {
  event_record e{17,    1700000000123,   "certificate_changed",
                 "s-1", "10.0.0.1:9401", R"({"old":"AB","new":"CD"})"};
  auto bytes = encode(e);
  auto back = decode_event_record(bytes);
  ASSERT_TRUE(back) << describe(back.error());
  EXPECT_EQ(back->seq, e.seq);
  EXPECT_EQ(back->time_ms, e.time_ms);
  EXPECT_EQ(back->type, e.type);
  EXPECT_EQ(back->server_id, e.server_id);
  EXPECT_EQ(back->address, e.address);
  EXPECT_EQ(back->details, e.details);

  auto bad_version = bytes;
  bad_version[0] = 0;
  EXPECT_EQ(code_of(decode_event_record(bad_version).error()), ec::corrupt_data);
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = decode_event_record(cut);
    ASSERT_FALSE(r) << "an event cut to " << n << " bytes decoded";
    EXPECT_EQ(code_of(r.error()), ec::corrupt_data);
  }
  auto trailing = bytes;
  trailing.push_back(1);
  EXPECT_EQ(code_of(decode_event_record(trailing).error()), ec::corrupt_data);
}

TEST(server_state_names, parse_back_from_their_printed_names_and_reject_others) {
  for (uint8_t v = 1; v <= 8; ++v) {
    auto s = static_cast<server_state>(v);
    auto parsed = parse_server_state(to_string(s));
    ASSERT_TRUE(parsed) << to_string(s);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_STREQ(to_string(server_state::awaiting_validation), "awaiting_validation");
  auto bad = parse_server_state("Trusted");
  ASSERT_FALSE(bad);
  EXPECT_EQ(code_of(bad.error()), ec::invalid_argument);
}

}  // namespace
}  // namespace certfleet
