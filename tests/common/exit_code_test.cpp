#include "common/exit_code.hpp"

#include <gtest/gtest.h>

namespace certfleet {
namespace {

TEST(exit_code, every_error_a_user_can_cause_maps_to_its_documented_code) {
  EXPECT_EQ(exit_code_for(caf::error{}), exit_ok);
  EXPECT_EQ(exit_code_for(make_error(ec::invalid_argument, "x")), exit_usage);
  EXPECT_EQ(exit_code_for(make_error(ec::bad_thumbprint, "x")), exit_usage);
  EXPECT_EQ(exit_code_for(make_error(ec::not_found, "x")), exit_not_found);
  EXPECT_EQ(exit_code_for(make_error(ec::insecure_permissions, "x")), exit_insecure);
  EXPECT_EQ(exit_code_for(make_error(ec::bad_config, "x")), exit_bad_config);
  EXPECT_EQ(exit_code_for(make_error(ec::disk_full, "x")), exit_storage);
  EXPECT_EQ(exit_code_for(make_error(ec::timeout, "x")), exit_unreachable);
  EXPECT_EQ(exit_code_for(make_error(ec::already_exists, "x")), exit_refused);
  EXPECT_EQ(exit_code_for(make_error(ec::crypto_failure, "x")), exit_failure);
}

}  // namespace
}  // namespace certfleet
