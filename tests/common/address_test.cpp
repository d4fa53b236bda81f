#include "common/address.hpp"

#include <vector>

#include <gtest/gtest.h>

namespace certfleet {
namespace {

TEST(address, ipv6_is_always_bracketed_and_never_twice) {
  EXPECT_EQ(format_address("::1", 9401), "[::1]:9401");
  EXPECT_EQ(format_address("[::1]", 9401), "[::1]:9401");
  EXPECT_EQ(format_address("10.0.0.5", 1), "10.0.0.5:1");
  EXPECT_EQ(format_address("backup1.example", 9401), "backup1.example:9401");
}

TEST(address, hostnames_and_ip_literals_are_accepted) {
  for (const char* ok : {"backup1.example", "b-1.example.", "host_1.corp", "localhost", "10.0.0.5",
                         "::1", "[fd00::5]", "2001:DB8::1", "::ffff:10.0.0.1"})
    EXPECT_FALSE(validate_host(ok)) << ok;
}

TEST(address, anything_but_a_hostname_or_ip_literal_is_refused) {
  using namespace std::string_literals;
  for (const std::string& bad : std::vector<std::string>{
           "127.0.0.1\0x"s, "host\x1b[2J"s, "host\r\nforged"s, "host\n"s, "a b", "", "-a.example",
           "a-.example", "a..example", "[10.0.0.5]", "fe80::1%eth0", "::1::2", "2130706433",
           "127.000.0.1", "0x7f.1", "bad/host", "host:80", std::string(64, 'a') + ".example"}) {
    auto err = validate_host(bad);
    EXPECT_TRUE(err) << bad;
    EXPECT_EQ(code_of(err), ec::invalid_argument);
  }
}

TEST(address, an_error_never_echoes_control_characters) {
  auto err = validate_host("evil\x1b]0;title\x07");
  ASSERT_TRUE(err);
  EXPECT_EQ(describe(err).find('\x1b'), std::string::npos);
  EXPECT_NE(describe(err).find("0x1B"), std::string::npos);
}

TEST(address, normal_forms_make_spellings_of_one_address_equal) {
  EXPECT_EQ(normalised_address("Backup1.Example.", 9401), "backup1.example:9401");
  EXPECT_EQ(normalised_address("[2001:DB8:0:0::1]", 9401), "[2001:db8::1]:9401");
  EXPECT_EQ(normalised_address("2001:db8::1", 9401), "[2001:db8::1]:9401");
  EXPECT_EQ(normalised_address("10.0.0.5", 9401), "10.0.0.5:9401");
}

TEST(address, parse_validates_and_normalises_the_host) {
  std::string host;
  uint16_t port = 0;
  ASSERT_FALSE(parse_address("[2001:DB8::1]:9500", 9401, host, port));
  EXPECT_EQ(host, "2001:db8::1");
  EXPECT_EQ(port, 9500);
  ASSERT_FALSE(parse_address("Backup1.Example", 9401, host, port));
  EXPECT_EQ(host, "backup1.example");
  EXPECT_EQ(port, 9401);
  EXPECT_TRUE(parse_address(std::string("127.0.0.1\0x:9401", 16), 9401, host, port));
}

TEST(address, names_and_accounts_with_control_characters_are_refused) {
  using namespace std::string_literals;
  EXPECT_FALSE(check_printable("name", "Backup Server 1 – Zürich"));
  for (const std::string& bad :
       {"a\0b"s, "a\x1b[31mred"s, "a\rb"s, "a\nb"s, "a\tb"s, "a\x7f"s, "a\xc2\x9b"s, "\xff"s})
    EXPECT_TRUE(check_printable("name", bad)) << bad;
}

}  // namespace
}  // namespace certfleet
