#include "common/vocabulary.hpp"

#include <gtest/gtest.h>

namespace certfleet {
namespace {

TEST(vocabulary, trust_policies_round_trip_in_the_configuration_spelling) {
  for (auto p : {trust_policy::manual, trust_policy::expected_only, trust_policy::tofu})
    EXPECT_EQ(parse_trust_policy(to_string(p)), p);
  EXPECT_STREQ(to_string(trust_policy::expected_only), "expected-only");
  EXPECT_FALSE(parse_trust_policy("expected_only"));
  EXPECT_FALSE(parse_trust_policy(""));
}

TEST(vocabulary, every_event_type_round_trips_and_unknown_names_are_refused) {
  for (auto t : all_event_types) EXPECT_EQ(parse_event_type(to_string(t)), t);
  EXPECT_STREQ(to_string(event_type::validation_required), "validation_required");
  EXPECT_FALSE(parse_event_type("Validated"));
  EXPECT_TRUE(is_trust_event(event_type::validated));
  EXPECT_FALSE(is_trust_event(event_type::connection_down));
}

}  // namespace
}  // namespace certfleet
