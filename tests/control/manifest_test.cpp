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

TEST(control_manifest, a_csv_row_reads_as_the_json_object_it_spells) {
  auto entries = parse_server_list_text(
      "host, port ,account,expected_thumbprint,name,comment\r\n"
      "\n"
      "B1.Example,9500,\"CORP\\admin\",,\"Backup, 01\",ignored\r\n"
      "[fd00::5],,,sha256:" +
          hex_a + ",,\n",
      "servers.csv", thumbprint_rule::optional);
  ASSERT_TRUE(entries) << describe(entries.error());
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].address(), "b1.example:9500");
  EXPECT_EQ((*entries)[0].account, "CORP\\admin");
  EXPECT_EQ((*entries)[0].name, "Backup, 01");
  EXPECT_FALSE((*entries)[0].sha256);
  EXPECT_EQ((*entries)[1].address(), "[fd00::5]:9401");
  EXPECT_TRUE((*entries)[1].account.empty());
  ASSERT_TRUE((*entries)[1].sha256);
  EXPECT_EQ((*entries)[1].sha256->to_string(), hex_a);

  auto json_list = parse_server_list_text(
      R"( [{"host":"B1.Example","port":"9500","account":"CORP\\admin","name":"Backup, 01"}])",
      "servers.json", thumbprint_rule::optional);
  ASSERT_TRUE(json_list) << describe(json_list.error());
  EXPECT_EQ((*json_list)[0].address(), (*entries)[0].address());
  EXPECT_EQ((*json_list)[0].account, (*entries)[0].account);
  EXPECT_EQ((*json_list)[0].name, (*entries)[0].name);
}

TEST(control_manifest, a_bad_csv_row_is_refused_naming_its_line) {
  struct bad_case {
    const char* text;
    const char* message;
  };
  for (auto c : {bad_case{"port,account\n1,a\n", "servers.csv:1: the header must name"},
                 bad_case{"host,port\nh,1\nh,0\n", "servers.csv:3: \"port\" must be"},
                 bad_case{"host,port\n\nh,1,extra\n", "servers.csv:3: 3 fields"},
                 bad_case{"host,sha256\nh,abc\n", "servers.csv:2: "},
                 bad_case{"host\na b\n", "servers.csv:2: "}}) {
    auto entries = parse_server_list_text(c.text, "servers.csv", thumbprint_rule::optional);
    ASSERT_FALSE(entries) << c.text;
    EXPECT_NE(describe(entries.error()).find(c.message), std::string::npos)
        << describe(entries.error());
  }
}

}  // namespace
}  // namespace certfleet::control
