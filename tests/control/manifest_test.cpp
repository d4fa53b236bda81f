#include "control/manifest.hpp"

#include <gtest/gtest.h>

namespace certfleet::control {
namespace {

const std::string hex_a(64, 'A');

TEST(control_manifest, an_agent_manifest_is_read_as_it_is_written) {
  auto text = R"({"version":1,"fleet_id":"f","endpoints":[
      {"index":0,"address":"127.0.0.1","port":9500,"thumbprint":")" +
              hex_a + R"(","admin_account":"backup-admin"},
      {"index":1,"address":"::1","port":9501,"thumbprint":")" +
              hex_a + R"("}]})";
  auto entries = parse_manifest_text(text, "fleet.json", thumbprint_rule::required);
  ASSERT_TRUE(entries) << describe(entries.error());
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].address(), "127.0.0.1:9500");
  EXPECT_EQ((*entries)[0].account, "backup-admin");
  EXPECT_EQ((*entries)[1].address(), "[::1]:9501");
  EXPECT_EQ((*entries)[1].sha256->to_string(), hex_a);
}

TEST(control_manifest, bulk_lists_may_leave_out_port_and_thumbprint) {
  auto entries = parse_manifest_text(R"([{"host":"B1.example","port":"","sha256":""}])", "list",
                                     thumbprint_rule::optional);
  ASSERT_TRUE(entries) << describe(entries.error());
  EXPECT_EQ((*entries)[0].address(), "b1.example:9401");
  EXPECT_FALSE((*entries)[0].sha256);
  auto strict =
      parse_manifest_text(R"([{"host":"b1.example"}])", "list", thumbprint_rule::required);
  ASSERT_FALSE(strict);
  EXPECT_NE(describe(strict.error()).find("list entry 0 needs \"sha256\""), std::string::npos);
}

TEST(control_manifest, bad_entries_are_refused_naming_the_entry) {
  for (const char* bad : {R"({"x":1})", R"([1])", R"([{"port":1}])", R"([{"host":"a b"}])",
                          R"([{"host":"h","port":0}])", R"([{"host":"h","port":"x"}])",
                          R"([{"host":"h","sha256":"abc"}])", R"([{"host":"h","name":"a\u001bb"}])",
                          R"([{"host":"127.0.0.1\u0000x"}])"}) {
    auto entries = parse_manifest_text(bad, "m", thumbprint_rule::optional);
    EXPECT_FALSE(entries) << bad;
  }
}

}  // namespace
}  // namespace certfleet::control
