// Every denied{reason} code maps to a state and a last_error that tells the operator what to do
// (actors/refusal.hpp).
#include "actors/refusal.hpp"

#include <gtest/gtest.h>

namespace certfleet {
namespace {

bool says(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(refusal, every_reason_code_has_its_own_outcome_naming_the_code) {
  for (int code = 1; code <= static_cast<int>(wire::last_denial_reason); ++code) {
    auto reason = static_cast<wire::denial_reason>(code);
    SCOPED_TRACE(wire::to_string(reason));
    auto o = interpret_denial(wire::denied{reason, ""}, "s-1");
    EXPECT_TRUE(says(o.last_error, std::string{"["} + wire::to_string(reason) + "]"));
    EXPECT_FALSE(says(o.last_error, "refused the connection (")) << "a generic text";
    EXPECT_TRUE(says(o.last_error, "; ")) << "what to do follows what happened";
    EXPECT_TRUE(o.blocks || says(o.last_error, "retrying") || says(o.last_error, "reconnecting"));
    EXPECT_TRUE(!o.blocks || says(o.last_error, "certfleet server credentials s-1"))
        << "a blocked server says how to unblock it";
    EXPECT_TRUE(!o.erase_credentials || o.blocks);
  }
}

TEST(refusal, wrong_credentials_and_role_block_and_destroy_the_credentials) {
  for (auto r : {wire::denial_reason::bad_credentials, wire::denial_reason::insufficient_role}) {
    auto o = interpret_denial(wire::denied{r, ""}, "s-1");
    EXPECT_TRUE(o.blocks);
    EXPECT_TRUE(o.erase_credentials);
  }
  EXPECT_TRUE(says(interpret_denial({wire::denial_reason::insufficient_role, ""}, "s-1").last_error,
                   "Backup Administrator"));
}

TEST(refusal, a_revoked_or_forgotten_manager_blocks_and_asks_to_register_again) {
  for (auto r : {wire::denial_reason::not_registered, wire::denial_reason::manager_revoked}) {
    auto o = interpret_denial(wire::denied{r, ""}, "s-7");
    EXPECT_TRUE(o.blocks);
    EXPECT_FALSE(o.erase_credentials);
    EXPECT_TRUE(says(o.last_error, "register again with 'certfleet server credentials s-7"));
  }
}

TEST(refusal, transient_refusals_keep_the_credentials_and_retry) {
  for (auto r : {wire::denial_reason::locked_out, wire::denial_reason::not_accepting,
                 wire::denial_reason::internal_error, wire::denial_reason::thumbprint_mismatch,
                 wire::denial_reason::protocol_violation, wire::denial_reason::unsupported_version,
                 wire::denial_reason::certificate_changed}) {
    SCOPED_TRACE(wire::to_string(r));
    auto o = interpret_denial(wire::denied{r, ""}, "s-1");
    EXPECT_FALSE(o.blocks);
    EXPECT_FALSE(o.erase_credentials);
  }
  EXPECT_TRUE(says(interpret_denial({wire::denial_reason::unsupported_version, ""}, "s").last_error,
                   "upgrade"));
  EXPECT_TRUE(says(interpret_denial({wire::denial_reason::internal_error, ""}, "s").last_error,
                   "backup server's log"));
}

TEST(refusal, the_servers_detail_is_quoted_escaped_and_bounded) {
  auto o = interpret_denial(wire::denied{wire::denial_reason::bad_credentials,
                                         "no\r\n[info] forged\x1b[2J" + std::string(5000, 'x')},
                            "s-1");
  EXPECT_TRUE(says(o.last_error, "the server says \"no\\x0D\\x0A[info] forged\\x1B[2J"));
  EXPECT_EQ(o.last_error.find('\n'), std::string::npos);
  EXPECT_EQ(o.last_error.find('\x1b'), std::string::npos);
  EXPECT_LT(o.last_error.size(), 1000u);
}

}  // namespace
}  // namespace certfleet
