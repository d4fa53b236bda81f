#include "config/settings.hpp"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.hpp"

namespace certfleet {
namespace {

using test::temp_dir;

std::filesystem::path write_text(const std::filesystem::path& file, const std::string& text) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream out{file, std::ios::binary};
  out << text;
  return file;
}

void expect_same(const settings& actual, const settings& expected) {
  EXPECT_EQ(actual.state_dir, expected.state_dir);
  EXPECT_EQ(actual.identity.organization, expected.identity.organization);
  EXPECT_EQ(actual.identity.common_name, expected.identity.common_name);
  EXPECT_EQ(actual.identity.validity_days, expected.identity.validity_days);
  EXPECT_EQ(actual.identity.renewal_warning_days, expected.identity.renewal_warning_days);
  EXPECT_EQ(actual.identity.master_key_file, expected.identity.master_key_file);
  EXPECT_EQ(actual.identity.store_group, expected.identity.store_group);
  EXPECT_EQ(actual.identity.renewal_reminder_interval_s,
            expected.identity.renewal_reminder_interval_s);
  EXPECT_EQ(actual.log.level, expected.log.level);
  EXPECT_EQ(actual.log.format, expected.log.format);
  const auto& a = actual.daemon;
  const auto& e = expected.daemon;
  EXPECT_EQ(a.control_socket, e.control_socket);
  EXPECT_EQ(a.read_only_group, e.read_only_group);
  EXPECT_EQ(a.connect_timeout_ms, e.connect_timeout_ms);
  EXPECT_EQ(a.handshake_timeout_ms, e.handshake_timeout_ms);
  EXPECT_EQ(a.max_concurrent_handshakes, e.max_concurrent_handshakes);
  EXPECT_EQ(a.collect_interval_s, e.collect_interval_s);
  EXPECT_EQ(a.backoff_initial_ms, e.backoff_initial_ms);
  EXPECT_EQ(a.backoff_max_ms, e.backoff_max_ms);
  EXPECT_EQ(a.trust_policy, e.trust_policy);
  EXPECT_EQ(a.clock_skew_tolerance_s, e.clock_skew_tolerance_s);
  EXPECT_EQ(a.credential_max_age_s, e.credential_max_age_s);
  EXPECT_EQ(a.event_retention_count, e.event_retention_count);
  EXPECT_EQ(a.event_retention_days, e.event_retention_days);
  EXPECT_EQ(a.max_frame_bytes, e.max_frame_bytes);
  EXPECT_EQ(a.request_timeout_ms, e.request_timeout_ms);
  EXPECT_EQ(a.peer_timeout_s, e.peer_timeout_s);
  // render_settings goes through the key table, so this also covers keys added there later.
  EXPECT_EQ(render_settings(actual), render_settings(expected));
}

// The error message of parsing `text` as "f.toml"; empty when it parsed.
std::string parse_error_of(const std::string& text) {
  auto parsed = parse_settings(text, "f.toml");
  if (parsed) return {};
  EXPECT_EQ(code_of(parsed.error()), ec::bad_config);
  return describe(parsed.error());
}

std::filesystem::path example_file() {
  return std::filesystem::path{CERTFLEET_SOURCE_DIR} / "config" / "certfleet.example.toml";
}

TEST(settings, empty_text_gives_the_defaults) {
  auto parsed = parse_settings("", "empty.toml");
  ASSERT_TRUE(parsed) << describe(parsed.error());
  expect_same(*parsed, settings{});
  EXPECT_EQ(parsed->state_dir, "/var/lib/certfleet");
  EXPECT_EQ(parsed->identity.validity_days, 365);
  EXPECT_EQ(parsed->log.level, "info");
}

TEST(settings, comments_and_empty_sections_give_the_defaults) {
  auto parsed = parse_settings("# nothing here\n\n[identity]\n[log]\n", "comments.toml");
  ASSERT_TRUE(parsed) << describe(parsed.error());
  expect_same(*parsed, settings{});
}

TEST(settings, every_documented_key_is_read_from_a_file) {
  temp_dir dir;
  auto file = write_text(dir.path() / "certfleet.toml", R"(
state_dir = "/srv/certfleet"

[identity]
organization = "Example Backup GmbH"
common_name = "manager-01.example.net"
validity_days = 730
renewal_warning_days = 60
master_key_file = "/etc/certfleet/master.key"
store_group = "backup-admins"
renewal_reminder_interval_s = 3600

[log]
level = "debug"
format = "json"

[daemon]
control_socket = "/run/certfleet/control.sock"
read_only_group = "backup-operators"
connect_timeout_ms = 3000
handshake_timeout_ms = 20000
max_concurrent_handshakes = 200
collect_interval_s = 300
backoff_initial_ms = 500
backoff_max_ms = 60000
trust_policy = "expected-only"
clock_skew_tolerance_s = 60
credential_max_age_s = 86400
event_retention_count = 50000
event_retention_days = 30
max_frame_bytes = 4194304
request_timeout_ms = 30000
peer_timeout_s = 12
)");
  auto loaded = load_settings(file);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  settings expected;
  expected.daemon.control_socket = "/run/certfleet/control.sock";
  expected.daemon.read_only_group = "backup-operators";
  expected.daemon.connect_timeout_ms = 3000;
  expected.daemon.handshake_timeout_ms = 20000;
  expected.daemon.max_concurrent_handshakes = 200;
  expected.daemon.collect_interval_s = 300;
  expected.daemon.backoff_initial_ms = 500;
  expected.daemon.backoff_max_ms = 60000;
  expected.daemon.trust_policy = trust_policy::expected_only;
  expected.daemon.clock_skew_tolerance_s = 60;
  expected.daemon.credential_max_age_s = 86400;
  expected.daemon.event_retention_count = 50000;
  expected.daemon.event_retention_days = 30;
  expected.daemon.max_frame_bytes = 4194304;
  expected.daemon.request_timeout_ms = 30000;
  expected.daemon.peer_timeout_s = 12;
  expected.state_dir = "/srv/certfleet";
  expected.identity.organization = "Example Backup GmbH";
  expected.identity.common_name = "manager-01.example.net";
  expected.identity.validity_days = 730;
  expected.identity.renewal_warning_days = 60;
  expected.identity.master_key_file = "/etc/certfleet/master.key";
  expected.identity.store_group = "backup-admins";
  expected.identity.renewal_reminder_interval_s = 3600;
  expected.log.level = "debug";
  expected.log.format = "json";
  expect_same(*loaded, expected);
}

TEST(settings, a_key_left_out_keeps_its_default) {
  auto parsed = parse_settings("[identity]\nvalidity_days = 90\n", "f.toml");
  ASSERT_TRUE(parsed) << describe(parsed.error());
  settings expected;
  expected.identity.validity_days = 90;
  expect_same(*parsed, expected);
}

TEST(settings, dotted_keys_and_inline_tables_are_the_same_keys) {
  auto parsed = parse_settings(
      "identity.validity_days = 100\nlog = { level = \"warn\", format = \"json\" }\n", "f.toml");
  ASSERT_TRUE(parsed) << describe(parsed.error());
  EXPECT_EQ(parsed->identity.validity_days, 100);
  EXPECT_EQ(parsed->log.level, "warn");
  EXPECT_EQ(parsed->log.format, "json");
}

TEST(settings, example_file_loads_and_equals_the_defaults) {
  auto loaded = load_settings(example_file());
  ASSERT_TRUE(loaded) << describe(loaded.error());
  expect_same(*loaded, settings{});
}

TEST(settings, example_file_documents_every_key_with_its_default) {
  std::ifstream in{example_file()};
  std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  ASSERT_FALSE(text.empty());
  for (const auto& key : describe_settings()) {
    SCOPED_TRACE(key.key);
    auto leaf = key.key.substr(key.key.rfind('.') + 1);
    EXPECT_NE(text.find("# Default: " + key.default_value + "\n" + leaf + " = " +
                        key.default_value + "\n"),
              std::string::npos);
    EXPECT_FALSE(key.doc.empty());
    EXPECT_FALSE(key.requirement.empty());
  }
}

TEST(settings, rendered_settings_parse_back_to_the_same_values) {
  settings s;
  s.state_dir = "/srv/with \"quotes\" and \\ backslash";
  s.identity.organization = "Äpfel & Birnen AG";
  s.identity.validity_days = 1000;
  s.log.format = "json";
  s.daemon.control_socket = "/run/certfleet \"main\".sock";
  s.daemon.read_only_group = "Domain Users@example.net";
  s.daemon.trust_policy = trust_policy::tofu;
  s.daemon.backoff_max_ms = 86400000;
  auto parsed = parse_settings(render_settings(s), "rendered.toml");
  ASSERT_TRUE(parsed) << describe(parsed.error());
  expect_same(*parsed, s);
}

TEST(settings, unknown_top_level_key_names_the_key_and_line_and_suggests_the_close_key) {
  auto message = parse_error_of("# comment\n\nstat_dir = \"/srv\"\n");
  EXPECT_EQ(message, "f.toml:3: unknown key 'stat_dir'; did you mean 'state_dir'?");
}

TEST(settings, unknown_nested_key_names_the_dotted_key_and_line_and_suggests_the_close_key) {
  auto message = parse_error_of("[identity]\norganization = \"x\"\nvalidty_days = 10\n");
  EXPECT_EQ(message,
            "f.toml:3: unknown key 'identity.validty_days'; did you mean "
            "'identity.validity_days'?");
}

TEST(settings, swapped_letters_count_as_one_edit) {
  auto message = parse_error_of("[log]\nlevle = \"info\"\n");
  EXPECT_EQ(message, "f.toml:2: unknown key 'log.levle'; did you mean 'log.level'?");
}

TEST(settings, misspelt_section_is_unknown_and_suggests_the_section) {
  auto message = parse_error_of("[identiy]\nvalidity_days = 10\n");
  EXPECT_EQ(message, "f.toml:1: unknown key 'identiy'; did you mean 'identity'?");
}

TEST(settings, known_key_outside_its_section_suggests_it_in_its_section) {
  auto message = parse_error_of("validity_days = 10\n");
  EXPECT_EQ(message,
            "f.toml:1: unknown key 'validity_days'; did you mean 'identity.validity_days'?");
}

TEST(settings, unknown_key_far_from_every_key_gets_no_suggestion) {
  auto message = parse_error_of("[log]\ncolour = true\n");
  EXPECT_EQ(message.rfind("f.toml:2: unknown key 'log.colour'", 0), 0u) << message;
  EXPECT_EQ(message.find("did you mean"), std::string::npos) << message;
}

TEST(settings, unknown_key_in_a_loaded_file_names_the_file_path) {
  temp_dir dir;
  auto file = write_text(dir.path() / "certfleet.toml", "[identity]\n\nvalidty_days = 10\n");
  auto loaded = load_settings(file);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(code_of(loaded.error()), ec::bad_config);
  EXPECT_EQ(describe(loaded.error()),
            file.string() +
                ":3: unknown key 'identity.validty_days'; did you mean 'identity.validity_days'?");
}

struct bad_value {
  std::string toml;
  std::string message;
};

void expect_refused(const std::vector<bad_value>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.toml);
    EXPECT_EQ(parse_error_of(c.toml), c.message);
  }
}

TEST(settings, bad_state_dir_is_refused_naming_key_and_line) {
  expect_refused({
      {"\nstate_dir = \"\"\n", "f.toml:2: state_dir must be a non-empty path, got \"\""},
      {"state_dir = 5\n", "f.toml:1: state_dir must be a non-empty path, got 5"},
      {"state_dir = [\"/a\"]\n", "f.toml:1: state_dir must be a non-empty path, got an array"},
  });
}

TEST(settings, bad_subject_names_are_refused_naming_key_and_line) {
  const std::string rule = "a non-empty string of at most 64 characters without control characters";
  const std::string long_name(65, 'a');
  expect_refused({
      {"[identity]\norganization = \"\"\n",
       "f.toml:2: identity.organization must be " + rule + ", got \"\""},
      {"[identity]\norganization = \"" + long_name + "\"\n",
       "f.toml:2: identity.organization must be " + rule + ", got \"" + long_name + "\""},
      {"[identity]\norganization = \"bell\\u0007\"\n",
       "f.toml:2: identity.organization must be " + rule + ", got \"bell\\u0007\""},
      {"[identity]\norganization = \"two\\nlines\"\n",
       "f.toml:2: identity.organization must be " + rule + ", got \"two\\nlines\""},
      {"[identity]\norganization = \"c1\\u0085\"\n",
       "f.toml:2: identity.organization must be " + rule + ", got \"c1\\u0085\""},
      {"[identity]\norganization = 42\n",
       "f.toml:2: identity.organization must be " + rule + ", got 42"},
      {"[identity]\n\ncommon_name = \"\"\n",
       "f.toml:3: identity.common_name must be " + rule + ", got \"\""},
      {"[identity]\ncommon_name = \"tab\\there\"\n",
       "f.toml:2: identity.common_name must be " + rule + ", got \"tab\\there\""},
      {"[identity]\ncommon_name = \"" + long_name + "\"\n",
       "f.toml:2: identity.common_name must be " + rule + ", got \"" + long_name + "\""},
  });
}

TEST(settings, subject_names_of_64_characters_are_accepted_even_when_longer_in_bytes) {
  std::string umlauts;
  for (int i = 0; i < 64; ++i) umlauts += "ä";  // 128 bytes, 64 characters
  auto parsed = parse_settings("[identity]\norganization = \"" + umlauts + "\"\ncommon_name = \"" +
                                   std::string(64, 'c') + "\"\n",
                               "f.toml");
  ASSERT_TRUE(parsed) << describe(parsed.error());
  EXPECT_EQ(parsed->identity.organization, umlauts);
  EXPECT_EQ(parsed->identity.common_name, std::string(64, 'c'));
}

TEST(settings, long_bad_values_are_shortened_in_the_message) {
  auto message = parse_error_of("[identity]\ncommon_name = \"" + std::string(500, 'x') + "\"\n");
  EXPECT_LT(message.size(), 300u) << message;
  EXPECT_EQ(message.substr(message.size() - 4), "\"...") << message;
}

TEST(settings, bad_day_counts_are_refused_naming_key_line_and_range) {
  const std::string validity = "identity.validity_days must be an integer between 1 and 3650";
  const std::string renewal = "identity.renewal_warning_days must be an integer between 1 and 365";
  expect_refused({
      {"[identity]\nvalidity_days = 0\n", "f.toml:2: " + validity + ", got 0"},
      {"[identity]\nvalidity_days = 3651\n", "f.toml:2: " + validity + ", got 3651"},
      {"[identity]\nvalidity_days = -5\n", "f.toml:2: " + validity + ", got -5"},
      {"[identity]\nvalidity_days = 9999999999999\n",
       "f.toml:2: " + validity + ", got 9999999999999"},
      {"[identity]\nvalidity_days = \"365\"\n", "f.toml:2: " + validity + ", got \"365\""},
      {"[identity]\nvalidity_days = 365.0\n", "f.toml:2: " + validity + ", got 365.0"},
      {"[identity]\nvalidity_days = true\n", "f.toml:2: " + validity + ", got true"},
      {"[identity]\nrenewal_warning_days = 0\n", "f.toml:2: " + renewal + ", got 0"},
      {"[identity]\nrenewal_warning_days = 366\n", "f.toml:2: " + renewal + ", got 366"},
  });
}

TEST(settings, day_count_bounds_are_accepted) {
  auto parsed =
      parse_settings("[identity]\nvalidity_days = 3650\nrenewal_warning_days = 365\n", "f.toml");
  ASSERT_TRUE(parsed) << describe(parsed.error());
  parsed = parse_settings("[identity]\nvalidity_days = 2\nrenewal_warning_days = 1\n", "f.toml");
  ASSERT_TRUE(parsed) << describe(parsed.error());
}

TEST(settings, renewal_reminder_interval_defaults_to_a_day_and_is_bounded) {
  EXPECT_EQ(settings{}.identity.renewal_reminder_interval_s, 86400);
  const std::string rule =
      "identity.renewal_reminder_interval_s must be an integer between 60 and 2592000";
  expect_refused({
      {"[identity]\nrenewal_reminder_interval_s = 59\n", "f.toml:2: " + rule + ", got 59"},
      {"[identity]\nrenewal_reminder_interval_s = 2592001\n",
       "f.toml:2: " + rule + ", got 2592001"},
      {"[identity]\nrenewal_reminder_interval_s = \"1d\"\n", "f.toml:2: " + rule + ", got \"1d\""},
  });
  for (int bound : {60, 2592000}) {
    auto parsed = parse_settings(
        "[identity]\nrenewal_reminder_interval_s = " + std::to_string(bound) + "\n", "f.toml");
    ASSERT_TRUE(parsed) << describe(parsed.error());
    EXPECT_EQ(parsed->identity.renewal_reminder_interval_s, bound);
  }
}

TEST(settings, renewal_warning_not_below_validity_is_refused_naming_both_keys) {
  const std::string both = "identity.renewal_warning_days must be less than identity.validity_days";
  expect_refused({
      {"[identity]\nvalidity_days = 30\nrenewal_warning_days = 30\n",
       "f.toml:3: " + both + ", got 30 and 30"},
      // Only validity_days is set: its line is the one to look at.
      {"[identity]\n\nvalidity_days = 10\n", "f.toml:3: " + both + ", got 30 and 10"},
      {"[identity]\nrenewal_warning_days = 365\n", "f.toml:2: " + both + ", got 365 and 365"},
  });
}

TEST(settings, bad_log_settings_are_refused_naming_key_line_and_choices) {
  expect_refused({
      {"[log]\nlevel = \"verbose\"\n",
       "f.toml:2: log.level must be one of trace, debug, info, warn, error, critical, off, got "
       "\"verbose\""},
      {"[log]\nlevel = \"INFO\"\n",
       "f.toml:2: log.level must be one of trace, debug, info, warn, error, critical, off, got "
       "\"INFO\""},
      {"[log]\nformat = \"xml\"\n", "f.toml:2: log.format must be one of text, json, got \"xml\""},
      {"[log]\nformat = 1\n", "f.toml:2: log.format must be one of text, json, got 1"},
  });
}

struct integer_key_range {
  std::string leaf;
  int64_t min;
  int64_t max;
};

const std::vector<integer_key_range> daemon_integer_keys = {
    {"connect_timeout_ms", 100, 120000},
    {"handshake_timeout_ms", 100, 300000},
    {"max_concurrent_handshakes", 1, 100000},
    {"collect_interval_s", 1, 86400},
    {"backoff_initial_ms", 10, 600000},
    {"backoff_max_ms", 100, 86400000},
    {"credential_max_age_s", 0, 31536000},
    {"event_retention_count", 1000, 1000000000},
    {"event_retention_days", 1, 3650},
    {"max_frame_bytes", 1024, 67108864},
    {"request_timeout_ms", 100, 600000},
    {"clock_skew_tolerance_s", 0, 86400},
    {"peer_timeout_s", 3, 3600},
};

TEST(settings, daemon_integers_out_of_range_are_refused_naming_key_line_and_range) {
  for (const auto& k : daemon_integer_keys) {
    const std::string rule = "daemon." + k.leaf + " must be an integer between " +
                             std::to_string(k.min) + " and " + std::to_string(k.max);
    const auto below = std::to_string(k.min - 1);
    const auto above = std::to_string(k.max + 1);
    expect_refused({
        {"[daemon]\n\n" + k.leaf + " = " + below + "\n", "f.toml:3: " + rule + ", got " + below},
        {"[daemon]\n" + k.leaf + " = " + above + "\n", "f.toml:2: " + rule + ", got " + above},
        {"[daemon]\n" + k.leaf + " = \"10\"\n", "f.toml:2: " + rule + ", got \"10\""},
    });
  }
}

TEST(settings, daemon_integer_bounds_are_accepted) {
  // All lower bounds together and all upper bounds together, so the cross-key rules hold.
  for (bool upper : {false, true}) {
    std::string text = "[daemon]\n";
    for (const auto& k : daemon_integer_keys)
      text += k.leaf + " = " + std::to_string(upper ? k.max : k.min) + "\n";
    SCOPED_TRACE(text);
    auto parsed = parse_settings(text, "f.toml");
    ASSERT_TRUE(parsed) << describe(parsed.error());
    EXPECT_EQ(parsed->daemon.backoff_max_ms, upper ? 86400000 : 100);
    EXPECT_EQ(parsed->daemon.credential_max_age_s, upper ? 31536000 : 0);
    EXPECT_EQ(parsed->daemon.clock_skew_tolerance_s, upper ? 86400 : 0);
  }
}

TEST(settings, bad_trust_policy_is_refused_naming_key_line_and_choices) {
  const std::string rule = "daemon.trust_policy must be one of manual, expected-only, tofu";
  expect_refused({
      {"[daemon]\ntrust_policy = \"auto\"\n", "f.toml:2: " + rule + ", got \"auto\""},
      {"[daemon]\ntrust_policy = \"TOFU\"\n", "f.toml:2: " + rule + ", got \"TOFU\""},
      {"[daemon]\ntrust_policy = \"\"\n", "f.toml:2: " + rule + ", got \"\""},
      {"[daemon]\ntrust_policy = true\n", "f.toml:2: " + rule + ", got true"},
  });
  for (auto policy : {trust_policy::manual, trust_policy::expected_only, trust_policy::tofu}) {
    auto parsed = parse_settings(
        std::string{"[daemon]\ntrust_policy = \""} + to_string(policy) + "\"\n", "f.toml");
    ASSERT_TRUE(parsed) << describe(parsed.error());
    EXPECT_EQ(parsed->daemon.trust_policy, policy);
    auto rendered = render_settings(*parsed);
    EXPECT_NE(rendered.find(std::string{"trust_policy = \""} + to_string(policy) + "\""),
              std::string::npos)
        << rendered;
  }
}

TEST(settings, read_only_group_may_be_empty_but_not_unprintable_or_overlong) {
  const std::string rule =
      "daemon.read_only_group must be empty or a string of at most 255 characters without "
      "control characters";
  const std::string long_name(256, 'g');
  expect_refused({
      {"[daemon]\nread_only_group = \"ops\\nroot\"\n",
       "f.toml:2: " + rule + ", got \"ops\\nroot\""},
      {"[daemon]\nread_only_group = \"" + long_name + "\"\n",
       "f.toml:2: " + rule + ", got \"" + long_name.substr(0, 80) + "\"..."},
      {"[daemon]\nread_only_group = 100\n", "f.toml:2: " + rule + ", got 100"},
  });
  auto parsed =
      parse_settings("[daemon]\nread_only_group = \"" + std::string(255, 'g') + "\"\n", "f.toml");
  ASSERT_TRUE(parsed) << describe(parsed.error());
  parsed = parse_settings("[daemon]\nread_only_group = \"\"\n", "f.toml");
  ASSERT_TRUE(parsed) << describe(parsed.error());
  EXPECT_EQ(parsed->daemon.read_only_group, "");
}

TEST(settings, relative_control_socket_is_resolved_against_the_file_directory) {
  temp_dir dir;
  auto file = write_text(dir.path() / "etc" / "certfleet.toml",
                         "[daemon]\ncontrol_socket = \"../run/./control.sock\"\n");
  auto loaded = load_settings(file);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(loaded->daemon.control_socket, (dir.path() / "run" / "control.sock").string());

  write_text(file, "[daemon]\ncontrol_socket = \"/run/certfleet.sock\"\n");
  loaded = load_settings(file);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(loaded->daemon.control_socket, "/run/certfleet.sock");

  // Empty stays empty: the daemon then uses <state_dir>/control.sock.
  write_text(file, "[daemon]\ncontrol_socket = \"\"\n");
  loaded = load_settings(file);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(loaded->daemon.control_socket, "");
}

TEST(settings, control_socket_that_cannot_be_a_socket_address_is_refused) {
  const std::string rule =
      "daemon.control_socket must be empty or a path of at most 107 bytes once resolved, "
      "without NUL characters";
  const std::string fits = "/" + std::string(106, 's');
  const std::string too_long = "/" + std::string(107, 's');
  expect_refused({
      {"[daemon]\ncontrol_socket = \"" + too_long + "\"\n",
       "f.toml:2: " + rule + ", got \"" + too_long.substr(0, 80) + "\"..."},
      {"[daemon]\ncontrol_socket = \"/run/a\\u0000b\"\n",
       "f.toml:2: " + rule + ", got \"/run/a\\u0000b\""},
      {"[daemon]\ncontrol_socket = 1\n", "f.toml:2: " + rule + ", got 1"},
  });
  auto parsed = parse_settings("[daemon]\ncontrol_socket = \"" + fits + "\"\n", "f.toml");
  ASSERT_TRUE(parsed) << describe(parsed.error());
  EXPECT_EQ(parsed->daemon.control_socket, fits);

  // A relative path short as written may be too long once resolved.
  auto resolved = parse_settings("[daemon]\ncontrol_socket = \"c.sock\"\n", "f.toml",
                                 "/" + std::string(101, 'd'));
  ASSERT_FALSE(resolved);
  EXPECT_EQ(describe(resolved.error()), "f.toml:2: " + rule + ", got \"c.sock\"");
}

TEST(settings, connect_timeout_above_handshake_timeout_is_refused_naming_both_keys) {
  const std::string both = "daemon.connect_timeout_ms must be at most daemon.handshake_timeout_ms";
  expect_refused({
      {"[daemon]\nhandshake_timeout_ms = 2000\nconnect_timeout_ms = 3000\n",
       "f.toml:3: " + both + ", got 3000 and 2000"},
      // Only handshake_timeout_ms is set: its line is the one to look at.
      {"[daemon]\n\nhandshake_timeout_ms = 4999\n", "f.toml:3: " + both + ", got 5000 and 4999"},
  });
  auto equal = parse_settings("[daemon]\nconnect_timeout_ms = 7000\nhandshake_timeout_ms = 7000\n",
                              "f.toml");
  ASSERT_TRUE(equal) << describe(equal.error());
}

TEST(settings, backoff_initial_above_backoff_max_is_refused_naming_both_keys) {
  const std::string both = "daemon.backoff_initial_ms must be at most daemon.backoff_max_ms";
  expect_refused({
      {"[daemon]\nbackoff_initial_ms = 600000\n", "f.toml:2: " + both + ", got 600000 and 300000"},
      {"[daemon]\n\nbackoff_max_ms = 500\n", "f.toml:3: " + both + ", got 1000 and 500"},
  });
  auto equal =
      parse_settings("[daemon]\nbackoff_initial_ms = 2000\nbackoff_max_ms = 2000\n", "f.toml");
  ASSERT_TRUE(equal) << describe(equal.error());
}

TEST(settings, a_section_given_as_a_value_is_refused) {
  expect_refused({
      {"identity = 5\n", "f.toml:1: identity must be a table (a [identity] section), got 5"},
      {"[[log]]\nlevel = \"info\"\n",
       "f.toml:1: log must be a table (a [log] section), got an array"},
  });
}

TEST(settings, every_problem_is_reported_in_file_order) {
  auto message = parse_error_of(
      "[log]\nlevel = \"loud\"\n[identity]\nvalidity_days = 0\norganisation = \"x\"\n");
  EXPECT_EQ(message,
            "f.toml:2: log.level must be one of trace, debug, info, warn, error, critical, off, "
            "got \"loud\"\n"
            "f.toml:4: identity.validity_days must be an integer between 1 and 3650, got 0\n"
            "f.toml:5: unknown key 'identity.organisation'; did you mean "
            "'identity.organization'?");
}

TEST(settings, syntax_error_gives_file_line_and_column) {
  auto message = parse_error_of("[identity]\nvalidity_days = \n");
  EXPECT_EQ(message.rfind("f.toml:2:", 0), 0u) << message;
  EXPECT_GT(message.size(), std::string{"f.toml:2:1: "}.size()) << message;

  message = parse_error_of("[log]\nlevel = \"info\"\nlevel = \"debug\"\n");
  EXPECT_EQ(message.rfind("f.toml:3:", 0), 0u) << message;
}

TEST(settings, syntax_error_in_a_file_names_the_file) {
  temp_dir dir;
  auto file = write_text(dir.path() / "broken.toml", "state_dir = \"unterminated\n");
  auto loaded = load_settings(file);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(code_of(loaded.error()), ec::bad_config);
  EXPECT_EQ(describe(loaded.error()).rfind(file.string() + ":1:", 0), 0u)
      << describe(loaded.error());
}

TEST(settings, missing_file_is_not_found_naming_the_path) {
  temp_dir dir;
  auto file = dir.path() / "absent.toml";
  auto loaded = load_settings(file);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(code_of(loaded.error()), ec::not_found);
  EXPECT_NE(describe(loaded.error()).find(file.string()), std::string::npos)
      << describe(loaded.error());
}

TEST(settings, relative_state_dir_is_resolved_against_the_file_directory) {
  temp_dir dir;
  auto file = write_text(dir.path() / "etc" / "certfleet.toml", "state_dir = \"state\"\n");
  auto loaded = load_settings(file);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(loaded->state_dir, dir.path() / "etc" / "state");

  write_text(file, "state_dir = \"../var/./state\"\n");
  loaded = load_settings(file);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(loaded->state_dir, dir.path() / "var" / "state");
}

TEST(settings, absolute_state_dir_is_kept_as_written) {
  temp_dir dir;
  auto file = write_text(dir.path() / "certfleet.toml", "state_dir = \"/srv/certfleet\"\n");
  auto loaded = load_settings(file);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(loaded->state_dir, "/srv/certfleet");
}

TEST(settings, parsed_text_resolves_relative_paths_only_when_given_a_base_directory) {
  auto kept = parse_settings("state_dir = \"state\"\n", "f.toml");
  ASSERT_TRUE(kept) << describe(kept.error());
  EXPECT_EQ(kept->state_dir, "state");
  auto resolved = parse_settings("state_dir = \"state\"\n", "f.toml", "/etc/certfleet");
  ASSERT_TRUE(resolved) << describe(resolved.error());
  EXPECT_EQ(resolved->state_dir, "/etc/certfleet/state");
}

TEST(settings, metrics_listen_takes_an_ip_literal_and_port) {
  for (std::string ok : {"127.0.0.1:9464", "[::1]:9464", "0.0.0.0:1", ""}) {
    auto parsed = parse_settings("[metrics]\nlisten = \"" + ok + "\"\n", "m.toml");
    ASSERT_TRUE(parsed) << ok << ": " << describe(parsed.error());
    EXPECT_EQ(parsed->metrics.listen, ok);
  }
  for (std::string bad : {"localhost:9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                          "::1:9464", "[::1]", "127.0.0.1:94a4", "[127.0.0.1]:9464"}) {
    auto message = parse_error_of("[metrics]\nlisten = \"" + bad + "\"\n");
    EXPECT_NE(message.find("metrics.listen must be empty or IP:PORT"), std::string::npos)
        << bad << ": " << message;
  }
}

}  // namespace
}  // namespace certfleet

namespace certfleet {
namespace {

TEST(master_key_location, defaults_to_master_key_in_the_state_directory) {
  settings s;
  s.state_dir = "/var/lib/certfleet";
  auto loc = locate_master_key(s, nullptr);
  EXPECT_EQ(loc.file, std::filesystem::path("/var/lib/certfleet/master.key"));
  EXPECT_FALSE(loc.systemd_credential);
  EXPECT_NE(loc.description.find("/var/lib/certfleet/master.key"), std::string::npos);
}

TEST(master_key_location, a_configured_file_outside_the_state_directory_is_used) {
  temp_dir dir;
  auto file = write_text(dir.path() / "certfleet.toml",
                         "[identity]\nmaster_key_file = \"keys/master.key\"\n");
  auto loaded = load_settings(file);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  auto loc = locate_master_key(*loaded, "");
  EXPECT_EQ(loc.file, dir.path() / "keys" / "master.key")
      << "resolved against the file's directory";
  EXPECT_FALSE(loc.systemd_credential);
}

TEST(master_key_location, a_systemd_credential_takes_precedence_when_present) {
  temp_dir creds;
  settings s;
  s.identity.master_key_file = "/etc/certfleet/master.key";
  // $CREDENTIALS_DIRECTORY without a master.key credential: the configured file.
  EXPECT_EQ(locate_master_key(s, creds.path().c_str()).file, s.identity.master_key_file);
  write_text(creds.path() / "master.key", std::string(32, 'k'));
  auto loc = locate_master_key(s, creds.path().c_str());
  EXPECT_EQ(loc.file, creds.path() / "master.key");
  EXPECT_TRUE(loc.systemd_credential);
  EXPECT_NE(loc.description.find("systemd credential"), std::string::npos);
}

TEST(settings, store_group_may_be_empty_but_not_unprintable) {
  EXPECT_EQ(parse_error_of("[identity]\nstore_group = \"\"\n"), "");
  EXPECT_EQ(parse_error_of("[identity]\nstore_group = \"adm\"\n"), "");
  auto err = parse_error_of("[identity]\nstore_group = \"a\\u001bb\"\n");
  EXPECT_NE(err.find("identity.store_group"), std::string::npos) << err;
}

}  // namespace
}  // namespace certfleet
