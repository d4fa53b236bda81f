#include "protocol/messages.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "common/bytes.hpp"
#include "protocol/frame.hpp"
#include "tests/protocol/sample_messages.hpp"

namespace certfleet {
namespace {

using testing::sample_messages;

std::vector<uint8_t> encoded(const wire::message& m) {
  auto e = wire::encode(m);
  EXPECT_TRUE(e) << describe(e.error());
  return e ? std::vector<uint8_t>(e->begin(), e->end()) : std::vector<uint8_t>{};
}

caf::expected<wire::message> decoded(const std::vector<uint8_t>& b) {
  return wire::decode(b.data(), b.size());
}

void expect_protocol_error(const caf::expected<wire::message>& r,
                           const std::string& mentions = "") {
  ASSERT_FALSE(r) << "decoding succeeded unexpectedly";
  EXPECT_EQ(code_of(r.error()), ec::protocol_error) << describe(r.error());
  if (!mentions.empty()) {
    EXPECT_NE(describe(r.error()).find(mentions), std::string::npos) << describe(r.error());
  }
}

std::vector<uint8_t> header(uint8_t type) {
  return {wire::protocol_version, type};
}

TEST(messages, every_message_type_round_trips) {
  auto samples = sample_messages();
  ASSERT_EQ(samples.size(), std::variant_size_v<wire::message>);
  for (const auto& m : samples) {
    auto b = encoded(m);
    ASSERT_GE(b.size(), 2u);
    EXPECT_EQ(b[0], wire::protocol_version);
    EXPECT_EQ(b[1], static_cast<uint8_t>(wire::type_of(m)));
    auto back = decoded(b);
    ASSERT_TRUE(back) << wire::to_string(wire::type_of(m)) << ": " << describe(back.error());
    EXPECT_TRUE(*back == m) << wire::to_string(wire::type_of(m));
  }
}

TEST(messages, the_registration_password_is_decoded_into_secure_memory) {
  static_assert(std::is_same_v<decltype(wire::register_request::password), secret_bytes>);
  auto back = decoded(encoded(sample_messages()[1]));
  ASSERT_TRUE(back);
  const auto& reg = std::get<wire::register_request>(*back);
  EXPECT_EQ(std::string(reg.password.begin(), reg.password.end()), "correct horse battery staple");
}

TEST(messages, a_payload_truncated_at_any_length_is_rejected) {
  for (const auto& m : sample_messages()) {
    auto b = encoded(m);
    for (size_t len = 0; len < b.size(); ++len) {
      auto r = wire::decode(b.data(), len);
      EXPECT_FALSE(r) << wire::to_string(wire::type_of(m)) << " truncated to " << len << " bytes";
      if (!r) {
        EXPECT_EQ(code_of(r.error()), ec::protocol_error);
      }
    }
  }
}

TEST(messages, a_trailing_byte_after_the_last_field_is_rejected) {
  for (const auto& m : sample_messages()) {
    auto b = encoded(m);
    b.push_back(0);
    expect_protocol_error(decoded(b), "unexpected bytes");
  }
}

TEST(messages, an_unknown_protocol_version_is_rejected_and_named) {
  auto b = encoded(wire::ping{1});
  b[0] = 2;
  expect_protocol_error(decoded(b), "version 2");
}

TEST(messages, unknown_and_unused_type_numbers_are_rejected) {
  for (int t : {0, 10, 31, 48, 200, 255}) {
    auto b = header(static_cast<uint8_t>(t));
    expect_protocol_error(decoded(b), "unknown message type " + std::to_string(t));
  }
}

TEST(messages, reserved_rotation_types_are_rejected_with_an_upgrade_hint) {
  for (int t = static_cast<int>(wire::message_type::rotation_refused) + 1;
       t <= wire::last_reserved_rotation_type; ++t) {
    auto b = header(static_cast<uint8_t>(t));
    b.resize(2 + thumbprint::size, 0xAB);
    expect_protocol_error(decoded(b), "certificate rotation");
  }
}

TEST(messages, rotation_messages_have_the_type_numbers_32_to_36) {
  EXPECT_EQ(wire::type_of(wire::rotate_manager_certificate{{1}}),
            static_cast<wire::message_type>(32));
  EXPECT_EQ(wire::type_of(wire::manager_certificate_stored{}), static_cast<wire::message_type>(33));
  EXPECT_EQ(wire::type_of(wire::retire_manager_certificate{}), static_cast<wire::message_type>(34));
  EXPECT_EQ(wire::type_of(wire::manager_certificate_retired{}),
            static_cast<wire::message_type>(35));
  EXPECT_EQ(wire::type_of(wire::rotation_refused{}), static_cast<wire::message_type>(36));
}

TEST(messages, a_certificate_to_rotate_to_must_be_present_and_within_its_cap) {
  auto empty = wire::encode(wire::rotate_manager_certificate{});
  ASSERT_FALSE(empty);
  EXPECT_EQ(code_of(empty.error()), ec::invalid_argument);
  auto huge = wire::encode(
      wire::rotate_manager_certificate{std::vector<uint8_t>(wire::max_certificate_length + 1, 1)});
  ASSERT_FALSE(huge);
  EXPECT_EQ(code_of(huge.error()), ec::invalid_argument);

  byte_writer w;
  w.u8(wire::protocol_version);
  w.u8(static_cast<uint8_t>(wire::message_type::rotate_manager_certificate));
  w.u32(static_cast<uint32_t>(wire::max_certificate_length + 1));
  expect_protocol_error(decoded(w.data()), "certificate");
  byte_writer zero;
  zero.u8(wire::protocol_version);
  zero.u8(static_cast<uint8_t>(wire::message_type::rotate_manager_certificate));
  zero.u32(0);
  expect_protocol_error(decoded(zero.data()), "certificate");
}

TEST(messages, a_rotation_refusal_names_only_a_rotation_request) {
  auto b = encoded(wire::rotation_refused{wire::message_type::retire_manager_certificate, "x"});
  for (uint8_t request : {0, 1, 33, 35, 36, 255}) {
    b[2] = request;
    expect_protocol_error(decoded(b), "rotation request");
  }
  auto e = wire::encode(wire::rotation_refused{wire::message_type::collect, "x"});
  ASSERT_FALSE(e);
  EXPECT_EQ(code_of(e.error()), ec::invalid_argument);
}

TEST(messages, a_string_above_its_cap_is_rejected_on_decode_and_refused_on_encode) {
  std::string long_name(wire::max_name_length + 1, 'n');
  byte_writer w;
  w.u8(wire::protocol_version);
  w.u8(static_cast<uint8_t>(wire::message_type::hello));
  w.u8(1);
  w.u8(1);
  w.str(long_name);
  expect_protocol_error(decoded(w.data()), "peer_name");

  auto e = wire::encode(wire::hello{1, 1, long_name});
  ASSERT_FALSE(e);
  EXPECT_EQ(code_of(e.error()), ec::invalid_argument);
}

TEST(messages, a_string_length_pointing_past_the_end_is_rejected_without_allocating_it) {
  byte_writer w;
  w.u8(wire::protocol_version);
  w.u8(static_cast<uint8_t>(wire::message_type::error));
  w.u16(3);
  w.u32(0xFFFFFFF0u);
  expect_protocol_error(decoded(w.data()), "text");
}

TEST(messages, an_inventory_claiming_more_jobs_than_the_cap_is_rejected) {
  byte_writer w;
  w.u8(wire::protocol_version);
  w.u8(static_cast<uint8_t>(wire::message_type::inventory));
  w.u32(static_cast<uint32_t>(wire::max_inventory_jobs + 1));
  expect_protocol_error(decoded(w.data()), "job_count");

  wire::inventory big;
  big.jobs.resize(wire::max_inventory_jobs + 1);
  auto e = wire::encode(big);
  ASSERT_FALSE(e);
  EXPECT_EQ(code_of(e.error()), ec::invalid_argument);
}

TEST(messages, an_inventory_at_the_job_cap_fits_in_one_default_frame) {
  wire::inventory full;
  full.jobs.resize(wire::max_inventory_jobs, {"job-name-of-moderate-length", "incremental",
                                              "success", 1764000000000, 1u << 30});
  auto e = wire::encode(full);
  ASSERT_TRUE(e);
  EXPECT_LE(e->size(), default_max_frame_size);
  auto back = wire::decode(e->data(), e->size());
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<wire::inventory>(*back).jobs.size(), wire::max_inventory_jobs);
}

TEST(messages, an_unknown_denial_reason_is_rejected) {
  auto b = encoded(wire::denied{wire::denial_reason::locked_out, "x"});
  for (uint8_t reason : {0, 12, 255}) {
    b[2] = reason;
    expect_protocol_error(decoded(b), "denial reason");
  }
}

TEST(messages, every_known_denial_reason_round_trips_with_its_name) {
  for (uint8_t r = 1; r <= static_cast<uint8_t>(wire::last_denial_reason); ++r) {
    auto reason = static_cast<wire::denial_reason>(r);
    EXPECT_STRNE(wire::to_string(reason), "unknown") << int{r};
    auto back = decoded(encoded(wire::denied{reason, "why"}));
    ASSERT_TRUE(back) << int{r};
    EXPECT_EQ(std::get<wire::denied>(*back).reason, reason);
  }
}

TEST(messages, a_hello_whose_minimum_version_exceeds_its_maximum_is_rejected) {
  expect_protocol_error(decoded(encoded(wire::hello{2, 1, "x"})), "min_version");
}

TEST(messages, no_defined_type_uses_the_numbers_left_reserved) {
  for (const auto& m : sample_messages()) {
    auto t = static_cast<uint8_t>(wire::type_of(m));
    EXPECT_TRUE(t < 37 || t > wire::last_reserved_rotation_type) << int{t};
  }
}

// Random payloads either fail cleanly with protocol_error or decode to a message that encodes
// back to exactly the same bytes: the encoding is canonical, and nothing crashes (run under
// CERTFLEET_SANITIZE=ON for the memory-safety half of that claim).
TEST(messages, ten_thousand_random_payloads_fail_cleanly_or_decode_canonically) {
  std::mt19937_64 rng{20251124};
  std::uniform_int_distribution<int> byte{0, 255};
  std::uniform_int_distribution<int> len{0, 96};
  std::uniform_int_distribution<int> type{1, 14};
  size_t accepted = 0;
  for (int i = 0; i < 10000; ++i) {
    std::vector<uint8_t> b(static_cast<size_t>(len(rng)));
    for (auto& x : b) x = static_cast<uint8_t>(byte(rng));
    // Half the inputs get a valid header so that the field decoders, not just the header check,
    // see random data; some get a small first length so that strings are plausibly sized.
    if (i % 2 == 0 && b.size() >= 2) {
      b[0] = wire::protocol_version;
      auto t = type(rng);
      b[1] = static_cast<uint8_t>(t <= 9 ? t : t + 22);  // 1..9 and 32..36
      if (i % 4 == 0 && b.size() >= 8) b[4] = b[5] = b[6] = 0;
    }
    auto r = decoded(b);
    if (r) {
      ++accepted;
      EXPECT_EQ(encoded(*r), b) << "input " << i << " decoded but is not canonical";
    } else {
      EXPECT_EQ(code_of(r.error()), ec::protocol_error) << describe(r.error());
    }

    frame_decoder d{64};
    auto err = d.feed(b.data(), b.size());
    if (err) {
      EXPECT_TRUE(code_of(err) == ec::protocol_error || code_of(err) == ec::frame_too_large);
    }
    while (auto p = d.next()) (void)wire::decode(p->data(), p->size());
  }
  EXPECT_LT(accepted, 10000u);
}

}  // namespace
}  // namespace certfleet
