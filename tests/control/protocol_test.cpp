// The control socket's wire format and access rules, without a daemon.
#include "control/protocol.hpp"

#include <gtest/gtest.h>

namespace certfleet::control {
namespace {

TEST(control_protocol, a_well_formed_request_yields_its_id_op_and_args) {
  request r;
  ASSERT_FALSE(parse_request(R"({"id": 7, "op": "server.show", "args": {"id": "s-1"}})", r));
  EXPECT_EQ(r.id, 7);
  EXPECT_EQ(r.op, "server.show");
  EXPECT_EQ(r.args["id"], "s-1");
}

TEST(control_protocol, a_request_without_args_gets_an_empty_object) {
  request r;
  ASSERT_FALSE(parse_request(R"({"id": "a", "op": "status"})", r));
  EXPECT_TRUE(r.args.is_object());
  EXPECT_TRUE(r.args.empty());
}

TEST(control_protocol, malformed_json_is_refused_with_the_position_and_an_example) {
  request r;
  auto err = parse_request(R"({"id": 1, "op": )", r);
  ASSERT_TRUE(err);
  EXPECT_EQ(code_of(err), ec::invalid_argument);
  EXPECT_NE(describe(err).find("not valid JSON (byte"), std::string::npos);
  EXPECT_TRUE(r.id.is_null());
}

TEST(control_protocol, an_unknown_op_is_refused_but_keeps_the_id_for_the_reply) {
  request r;
  auto err = parse_request(R"({"id": 42, "op": "server.explode"})", r);
  ASSERT_TRUE(err);
  EXPECT_EQ(r.id, 42);
  EXPECT_NE(describe(err).find("unknown op \"server.explode\""), std::string::npos);
  EXPECT_NE(describe(err).find("server.trust"), std::string::npos);
}

TEST(control_protocol, ill_typed_fields_are_named_in_the_error) {
  request r;
  EXPECT_NE(describe(parse_request(R"({"id": 1, "op": 3})", r)).find("\"op\""), std::string::npos);
  EXPECT_NE(describe(parse_request(R"({"id": 1, "op": "status", "args": [1]})", r)).find("args"),
            std::string::npos);
  EXPECT_NE(describe(parse_request(R"([1, 2])", r)).find("not an object"), std::string::npos);
  EXPECT_NE(describe(parse_request(R"({"id": {}, "op": "status"})", r)).find("\"id\""),
            std::string::npos);
}

TEST(control_protocol, argument_accessors_name_the_op_and_the_argument) {
  request r;
  ASSERT_FALSE(parse_request(
      R"({"id":1,"op":"server.add","args":{"host":5,"port":70000,"follow":"yes"}})", r));
  auto host = string_arg(r, "host");
  ASSERT_FALSE(host);
  EXPECT_EQ(describe(host.error()), "server.add: argument \"host\" must be a string");
  auto port = port_arg(r, "port");
  ASSERT_FALSE(port);
  EXPECT_NE(describe(port.error()).find("between 1 and 65535"), std::string::npos);
  EXPECT_FALSE(bool_arg(r, "follow", false));
  auto missing = string_arg(r, "account");
  ASSERT_FALSE(missing);
  EXPECT_NE(describe(missing.error()).find("is required"), std::string::npos);
  auto since = uint_arg(r, "since", 5, 100);
  ASSERT_TRUE(since);
  EXPECT_EQ(*since, 5u);
}

TEST(control_protocol, error_replies_carry_the_code_name_message_and_exit_code) {
  auto line = error_reply(9, make_error(ec::not_found, "no server s-1"));
  ASSERT_EQ(line.back(), '\n');
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["id"], 9);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["error"]["code"], "not_found");
  EXPECT_EQ(j["error"]["message"], "no server s-1");
  EXPECT_EQ(j["error"]["exit_code"], 3);
  auto back = error_from_json(j["error"]);
  EXPECT_EQ(code_of(back), ec::not_found);
  EXPECT_EQ(describe(back), "no server s-1");
}

TEST(control_protocol, every_error_code_name_parses_back_to_its_code) {
  for (int i = 1; i <= static_cast<int>(ec::invalid_state); ++i) {
    auto code = static_cast<ec>(i);
    EXPECT_EQ(parse_error_code(to_string(code)), code) << to_string(code);
  }
  EXPECT_EQ(parse_error_code("nonsense"), ec::none);
}

TEST(control_protocol, root_and_the_daemon_uid_get_full_access) {
  peer_identity root{1, 0, 0, {}};
  peer_identity self{1, 1000, 1000, {}};
  EXPECT_EQ(decide_access(root, 1000, std::nullopt), access_level::full);
  EXPECT_EQ(decide_access(self, 1000, std::nullopt), access_level::full);
}

TEST(control_protocol, read_only_group_members_by_primary_or_supplementary_group_get_read_only) {
  peer_identity primary{1, 2000, 50, {}};
  peer_identity supplementary{1, 2001, 60, {70, 50}};
  peer_identity stranger{1, 2002, 60, {70}};
  EXPECT_EQ(decide_access(primary, 1000, gid_t{50}), access_level::read_only);
  EXPECT_EQ(decide_access(supplementary, 1000, gid_t{50}), access_level::read_only);
  EXPECT_EQ(decide_access(stranger, 1000, gid_t{50}), access_level::refused);
  EXPECT_EQ(decide_access(primary, 1000, std::nullopt), access_level::refused);
}

TEST(control_protocol, only_status_list_show_and_events_are_read_only) {
  for (const char* op : {"status", "server.list", "server.show", "events.subscribe"})
    EXPECT_EQ(required_access(op), access_level::read_only) << op;
  for (const char* op : {"server.add", "server.add_bulk", "server.trust", "server.trust_manifest",
                         "server.reject", "server.remove", "server.credentials"})
    EXPECT_EQ(required_access(op), access_level::full) << op;
  EXPECT_FALSE(required_access("server.explode"));
}

TEST(control_protocol, the_line_reader_splits_lines_across_chunks) {
  line_reader reader(64);
  std::string line;
  reader.feed("{\"a\":", 5);
  EXPECT_FALSE(reader.next(line));
  reader.feed("1}\n{\"b\":2}\n{\"c", 14);
  ASSERT_TRUE(reader.next(line));
  EXPECT_EQ(line, "{\"a\":1}");
  ASSERT_TRUE(reader.next(line));
  EXPECT_EQ(line, "{\"b\":2}");
  EXPECT_FALSE(reader.next(line));
  reader.feed("\":3}\n", 5);
  ASSERT_TRUE(reader.next(line));
  EXPECT_EQ(line, "{\"c\":3}");
  EXPECT_FALSE(reader.overflowed());
}

TEST(control_protocol, a_line_at_the_limit_is_accepted_and_one_byte_more_overflows) {
  line_reader reader(8);
  std::string line;
  reader.feed("12345678\n", 9);
  ASSERT_TRUE(reader.next(line));
  EXPECT_EQ(line, "12345678");
  reader.feed("123456789", 9);
  EXPECT_FALSE(reader.next(line));
  EXPECT_TRUE(reader.overflowed());
  reader.feed("\n", 1);
  EXPECT_FALSE(reader.next(line));
}

TEST(control_protocol, an_overlong_line_arriving_whole_overflows) {
  line_reader reader(4);
  std::string line;
  reader.feed("123456\nok\n", 10);
  EXPECT_FALSE(reader.next(line));
  EXPECT_TRUE(reader.overflowed());
}

TEST(control_protocol, addresses_parse_with_default_port_and_bracketed_ipv6) {
  std::string host;
  uint16_t port = 0;
  ASSERT_FALSE(parse_address("backup1.example", host, port));
  EXPECT_EQ(host, "backup1.example");
  EXPECT_EQ(port, 9401);
  ASSERT_FALSE(parse_address("10.0.0.5:10001", host, port));
  EXPECT_EQ(host, "10.0.0.5");
  EXPECT_EQ(port, 10001);
  ASSERT_FALSE(parse_address("[::1]:9500", host, port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 9500);
  ASSERT_FALSE(parse_address("[fe80::1]", host, port));
  EXPECT_EQ(port, 9401);
  ASSERT_FALSE(parse_address("fe80::2", host, port));
  EXPECT_EQ(host, "fe80::2");
  EXPECT_EQ(format_address("::1", 9401), "[::1]:9401");
  EXPECT_EQ(format_address("h", 1), "h:1");
}

TEST(control_protocol, bad_addresses_are_refused_with_the_accepted_forms) {
  std::string host;
  uint16_t port = 0;
  for (const char* bad : {"", ":9401", "h:", "h:0", "h:70000", "h:x1", "[::1", "[::1]x"}) {
    auto err = parse_address(bad, host, port);
    ASSERT_TRUE(err) << bad;
    EXPECT_EQ(code_of(err), ec::invalid_argument);
    EXPECT_NE(describe(err).find("HOST:PORT"), std::string::npos) << bad;
  }
}

TEST(control_protocol, the_event_type_list_names_every_documented_type) {
  const auto& types = event_types();
  EXPECT_EQ(types.size(), 19u);
  EXPECT_NE(std::find(types.begin(), types.end(), "server_certificate_expiring"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "certificate_mismatch"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "certificate_renewal_due"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "connection_down"), types.end());
}

}  // namespace
}  // namespace certfleet::control
