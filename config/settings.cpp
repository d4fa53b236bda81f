#include "config/settings.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <utility>

#include <sys/un.h>

#include <toml++/toml.h>

#include "common/fs.hpp"

// Debian's libtomlplusplus is a compiled library built with exceptions (symbols live in
// toml::v3::ex); parse errors arrive as toml::parse_error exceptions, and a header compiled
// without them would look for symbols the library does not have.
static_assert(TOML_EXCEPTIONS, "certfleet expects toml++ built with exceptions");

namespace certfleet {
namespace {

// X.509 ub-organization-name and ub-common-name (RFC 5280, appendix A).
constexpr size_t x509_name_max = 64;

// A sanity bound only: group names from NSS (LDAP, sssd) can be long and hold spaces or '@', so
// nothing stricter is checked here; whether the group exists is for the daemon to say at start.
constexpr size_t group_name_max = 255;

// bind() takes at most this many bytes of path (sun_path less its terminating NUL); a longer
// control socket path would only fail when the daemon starts, far from the line that caused it.
constexpr size_t socket_path_max = sizeof(sockaddr_un{}.sun_path) - 1;

// What a key's value is checked and stored against while one document is being read.
struct parse_context {
  std::filesystem::path base_dir;
};

// One configuration key: everything the parser, the help text and render_settings need.
struct key_rule {
  std::string path;
  std::string doc;
  // Completes "<path> must be ...": used for both a wrong type and a bad value, so the user reads
  // one sentence saying what is accepted.
  std::string requirement;
  // Stores the node's value; false when its type or value breaks `requirement`.
  std::function<bool(const toml::node&, const parse_context&, settings&)> apply;
  // The current value as a TOML literal.
  std::function<std::string(const settings&)> render;
};

// A check across keys, run once every key is valid on its own. `keys` are in the order in which
// their line is preferred for the message: the first one the file sets gives the line.
struct cross_rule {
  std::vector<std::string> keys;
  std::function<std::optional<std::string>(const settings&)> check;
};

std::string toml_string_literal(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out = "\"";
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    auto u = static_cast<unsigned char>(c);
    // C1 controls (U+0080..U+009F, UTF-8 C2 80..C2 9F) can drive a terminal as C0 ones do.
    if (u == 0xc2 && i + 1 < text.size() &&
        (static_cast<unsigned char>(text[i + 1]) & 0xe0) == 0x80) {
      u = static_cast<unsigned char>(text[++i]);
      out += "\\u00";
      out += hex[u >> 4];
      out += hex[u & 0xf];
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += "\\u00";
          out += hex[u >> 4];
          out += hex[u & 0xf];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// Decodes UTF-8 leniently (toml++ has already rejected invalid input); a stray byte counts as one
// code point of its own value so that nothing is silently skipped.
std::vector<char32_t> code_points(std::string_view text) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < text.size();) {
    auto b = static_cast<unsigned char>(text[i]);
    size_t len = b < 0x80           ? 1
                 : (b >> 5) == 0x6  ? 2
                 : (b >> 4) == 0xe  ? 3
                 : (b >> 3) == 0x1e ? 4
                                    : 1;
    if (i + len > text.size()) len = 1;
    char32_t cp = len == 1 ? b : b & (0x3f >> (len - 1));
    for (size_t k = 1; k < len; ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3f);
    out.push_back(cp);
    i += len;
  }
  return out;
}

// The value as the user wrote it, for "got ..." (long strings cut so the message stays readable).
std::string describe_value(const toml::node& node) {
  if (auto s = node.as_string()) {
    constexpr size_t shown_max = 80;
    std::string_view text = s->get();
    if (text.size() <= shown_max) return toml_string_literal(text);
    size_t cut = shown_max;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
    return toml_string_literal(text.substr(0, cut)) + "...";
  }
  if (auto i = node.as_integer()) return std::to_string(i->get());
  if (auto f = node.as_floating_point()) {
    std::ostringstream text;
    text << *f;
    return text.str();
  }
  if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
  if (node.is_table()) return "a table";
  if (node.is_array()) return "an array";
  return "a date or time";
}

// ---- Key kinds. Each returns a key_rule; `get` is a generic lambda returning the field. ------

template <class Get>
key_rule integer_key(std::string path, std::string doc, int64_t min, int64_t max, Get get) {
  using field_type = std::remove_reference_t<decltype(get(std::declval<settings&>()))>;
  static_assert(std::is_integral_v<field_type>);
  key_rule rule;
  rule.path = std::move(path);
  rule.doc = std::move(doc);
  rule.requirement = "an integer between " + std::to_string(min) + " and " + std::to_string(max);
  rule.apply = [=](const toml::node& node, const parse_context&, settings& out) {
    auto value = node.as_integer();
    if (!value || value->get() < min || value->get() > max) return false;
    get(out) = static_cast<field_type>(value->get());
    return true;
  };
  rule.render = [=](const settings& s) { return std::to_string(get(s)); };
  return rule;
}

enum class empty_value { refused, allowed };

// A name shown to people or looked up by the system (a certificate subject, a group): printable
// and bounded. With empty_value::allowed, "" means "none".
template <class Get>
key_rule name_key(std::string path, std::string doc, size_t max_chars, empty_value empty, Get get) {
  key_rule rule;
  rule.path = std::move(path);
  rule.doc = std::move(doc);
  rule.requirement = (empty == empty_value::allowed ? "empty or a string" : "a non-empty string") +
                     std::string{" of at most "} + std::to_string(max_chars) +
                     " characters without control characters";
  rule.apply = [=](const toml::node& node, const parse_context&, settings& out) {
    auto value = node.as_string();
    if (!value) return false;
    if (value->get().empty()) {
      if (empty == empty_value::refused) return false;
      get(out).clear();
      return true;
    }
    auto cps = code_points(value->get());
    if (cps.size() > max_chars) return false;
    auto is_control = [](char32_t c) { return c < 0x20 || (c >= 0x7f && c <= 0x9f); };
    if (std::any_of(cps.begin(), cps.end(), is_control)) return false;
    get(out) = value->get();
    return true;
  };
  rule.render = [=](const settings& s) { return toml_string_literal(get(s)); };
  return rule;
}

template <class Get>
key_rule choice_key(std::string path, std::string doc, std::vector<std::string> choices, Get get) {
  key_rule rule;
  rule.path = std::move(path);
  rule.doc = std::move(doc);
  rule.requirement = "one of";
  for (size_t i = 0; i < choices.size(); ++i) rule.requirement += (i ? ", " : " ") + choices[i];
  rule.apply = [=](const toml::node& node, const parse_context&, settings& out) {
    auto value = node.as_string();
    if (!value || std::find(choices.begin(), choices.end(), value->get()) == choices.end())
      return false;
    get(out) = value->get();
    return true;
  };
  rule.render = [=](const settings& s) { return toml_string_literal(get(s)); };
  return rule;
}

// One value of an enum of common/vocabulary.hpp, spelt as its `to_string` spells it.
template <class Enum, class Parse, class Get>
key_rule enum_key(std::string path, std::string doc, std::vector<Enum> values, Parse parse,
                  Get get) {
  key_rule rule;
  rule.path = std::move(path);
  rule.doc = std::move(doc);
  rule.requirement = "one of";
  for (size_t i = 0; i < values.size(); ++i)
    rule.requirement += (i ? ", " : " ") + std::string{to_string(values[i])};
  rule.apply = [=](const toml::node& node, const parse_context&, settings& out) {
    auto value = node.as_string();
    if (!value) return false;
    auto parsed = parse(value->get());
    if (!parsed || std::find(values.begin(), values.end(), *parsed) == values.end()) return false;
    get(out) = *parsed;
    return true;
  };
  rule.render = [=](const settings& s) { return toml_string_literal(to_string(get(s))); };
  return rule;
}

// A file-system path; relative ones are resolved against the configuration file's directory.
template <class Get>
key_rule path_key(std::string path, std::string doc, Get get) {
  key_rule rule;
  rule.path = std::move(path);
  rule.doc = std::move(doc);
  rule.requirement = "a non-empty path";
  rule.apply = [=](const toml::node& node, const parse_context& ctx, settings& out) {
    auto value = node.as_string();
    if (!value || value->get().empty()) return false;
    std::filesystem::path p = value->get();
    if (p.is_relative() && !ctx.base_dir.empty()) p = (ctx.base_dir / p).lexically_normal();
    get(out) = p;
    return true;
  };
  rule.render = [=](const settings& s) { return toml_string_literal(get(s).string()); };
  return rule;
}

// A file-system path that may be empty ("use the default"); relative ones are resolved as by
// path_key.
template <class Get>
key_rule optional_path_key(std::string path, std::string doc, Get get) {
  key_rule rule;
  rule.path = std::move(path);
  rule.doc = std::move(doc);
  rule.requirement = "empty or a path without NUL characters";
  rule.apply = [=](const toml::node& node, const parse_context& ctx, settings& out) {
    auto value = node.as_string();
    if (!value || value->get().find('\0') != std::string::npos) return false;
    std::filesystem::path p = value->get();
    if (!p.empty() && p.is_relative() && !ctx.base_dir.empty())
      p = (ctx.base_dir / p).lexically_normal();
    get(out) = p;
    return true;
  };
  rule.render = [=](const settings& s) { return toml_string_literal(get(s).string()); };
  return rule;
}

// A Unix socket path that may be empty (the daemon then picks one under state_dir). Relative
// paths are resolved like path_key's; the resolved path must fit a socket address.
template <class Get>
key_rule socket_path_key(std::string path, std::string doc, Get get) {
  key_rule rule;
  rule.path = std::move(path);
  rule.doc = std::move(doc);
  rule.requirement = "empty or a path of at most " + std::to_string(socket_path_max) +
                     " bytes once resolved, without NUL characters";
  rule.apply = [=](const toml::node& node, const parse_context& ctx, settings& out) {
    auto value = node.as_string();
    if (!value) return false;
    if (value->get().empty()) {
      get(out).clear();
      return true;
    }
    if (value->get().find('\0') != std::string::npos) return false;
    std::filesystem::path p = value->get();
    if (p.is_relative() && !ctx.base_dir.empty()) p = (ctx.base_dir / p).lexically_normal();
    if (p.native().size() > socket_path_max) return false;
    get(out) = p.native();
    return true;
  };
  rule.render = [=](const settings& s) { return toml_string_literal(get(s)); };
  return rule;
}

// An IP literal and a port to listen on ("127.0.0.1:9464", "[::1]:9464"), or "" for off. Names
// are refused: a metrics endpoint must not depend on name resolution at start.
template <class Get>
key_rule listen_address_key(std::string path, std::string doc, Get get) {
  key_rule rule;
  rule.path = std::move(path);
  rule.doc = std::move(doc);
  rule.requirement = "empty or IP:PORT with an IP literal (IPv6 in brackets) and a port 1..65535";
  rule.apply = [=](const toml::node& node, const parse_context&, settings& out) {
    auto value = node.as_string();
    if (!value) return false;
    const std::string& text = value->get();
    if (text.empty()) {
      get(out).clear();
      return true;
    }
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon + 1 == text.size()) return false;
    std::string host = text.substr(0, colon);
    std::string port = text.substr(colon + 1);
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) return false;
    long number = std::stol(port);
    if (number < 1 || number > 65535) return false;
    unsigned char buf[sizeof(struct in6_addr)];
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), buf) != 1) return false;
    } else if (inet_pton(AF_INET, host.c_str(), buf) != 1) {
      return false;
    }
    get(out) = text;
    return true;
  };
  rule.render = [=](const settings& s) { return toml_string_literal(get(s)); };
  return rule;
}

// ---- The key table: adding a key is one entry here (plus its field and example line). --------

const std::vector<key_rule>& key_table() {
  static const std::vector<key_rule> table = {
      path_key(
          "state_dir",
          "Where certfleet keeps its certificate store, master key and database. A relative "
          "path is resolved against the directory of this file.",
          [](auto& s) -> auto& { return s.state_dir; }),
      name_key(
          "identity.organization",
          "The installation's licensed organisation: the certificate subject's O.", x509_name_max,
          empty_value::refused, [](auto& s) -> auto& { return s.identity.organization; }),
      name_key(
          "identity.common_name", "The certificate subject's CN.", x509_name_max,
          empty_value::refused, [](auto& s) -> auto& { return s.identity.common_name; }),
      integer_key(
          "identity.validity_days", "Validity of generated certificates, in days.", 1, 3650,
          [](auto& s) -> auto& { return s.identity.validity_days; }),
      integer_key(
          "identity.renewal_warning_days",
          "Days before expiry at which renewal is prompted; less than validity_days.", 1, 365,
          [](auto& s) -> auto& { return s.identity.renewal_warning_days; }),
      optional_path_key(
          "identity.master_key_file",
          "The sealing master key; empty means <state_dir>/master.key. May lie outside the state "
          "directory. A systemd credential named master.key ($CREDENTIALS_DIRECTORY) takes "
          "precedence. A relative path is resolved against the directory of this file.",
          [](auto& s) -> auto& { return s.identity.master_key_file; }),
      name_key(
          "identity.store_group",
          "A group that may read the certificate store: its key files become mode 0640 with this "
          "group and the store directory 0750. Empty means only the owner.",
          group_name_max, empty_value::allowed,
          [](auto& s) -> auto& { return s.identity.store_group; }),
      integer_key(
          "identity.renewal_reminder_interval_s",
          "Seconds between repeats of a due renewal prompt, until the certificate is renewed.", 60,
          2592000, [](auto& s) -> auto& { return s.identity.renewal_reminder_interval_s; }),
      choice_key(
          "log.level", "Least severe log messages written.",
          {"trace", "debug", "info", "warn", "error", "critical", "off"},
          [](auto& s) -> auto& { return s.log.level; }),
      choice_key(
          "log.format", "text for people, json for log collectors.", {"text", "json"},
          [](auto& s) -> auto& { return s.log.format; }),
      socket_path_key(
          "daemon.control_socket",
          "Path of the daemon's control socket; empty means <state_dir>/control.sock. A relative "
          "path is resolved against the directory of this file.",
          [](auto& s) -> auto& { return s.daemon.control_socket; }),
      name_key(
          "daemon.read_only_group",
          "A group whose members may list servers and follow events through the control socket "
          "but never change trust; empty means none.",
          group_name_max, empty_value::allowed,
          [](auto& s) -> auto& { return s.daemon.read_only_group; }),
      integer_key(
          "daemon.connect_timeout_ms",
          "Deadline of one TCP connect to a server, in milliseconds; at most "
          "handshake_timeout_ms.",
          100, 120000, [](auto& s) -> auto& { return s.daemon.connect_timeout_ms; }),
      integer_key(
          "daemon.handshake_timeout_ms",
          "Deadline of connecting to a server and completing the TLS handshake, in milliseconds, "
          "counted from the start of the connect.",
          100, 300000, [](auto& s) -> auto& { return s.daemon.handshake_timeout_ms; }),
      integer_key(
          "daemon.max_concurrent_handshakes",
          "Fleet-wide cap on TLS handshakes in flight, so that a restart never becomes a connect "
          "storm.",
          1, 100000, [](auto& s) -> auto& { return s.daemon.max_concurrent_handshakes; }),
      integer_key(
          "daemon.collect_interval_s",
          "Seconds between collections from a trusted server, each jittered by up to 10 %.", 1,
          86400, [](auto& s) -> auto& { return s.daemon.collect_interval_s; }),
      integer_key(
          "daemon.backoff_initial_ms",
          "First reconnect delay, in milliseconds; it doubles per failed attempt up to "
          "backoff_max_ms, with full jitter. At most backoff_max_ms.",
          10, 600000, [](auto& s) -> auto& { return s.daemon.backoff_initial_ms; }),
      integer_key(
          "daemon.backoff_max_ms", "Longest reconnect delay, in milliseconds.", 100, 86400000,
          [](auto& s) -> auto& { return s.daemon.backoff_max_ms; }),
      integer_key(
          "daemon.backoff_reset_after_s",
          "Seconds a connection must stay up before the reconnect backoff starts again from "
          "backoff_initial_ms (a completed collection or registration also resets it), so that a "
          "server that accepts TLS and closes is not reconnected at the initial delay forever.",
          1, 86400, [](auto& s) -> auto& { return s.daemon.backoff_reset_after_s; }),
      enum_key(
          "daemon.trust_policy",
          "manual: an admin validates every thumbprint; expected-only: only thumbprints given in "
          "advance are trusted automatically; tofu: trust on first use (events still say so).",
          std::vector<trust_policy>{trust_policy::manual, trust_policy::expected_only,
                                    trust_policy::tofu},
          parse_trust_policy, [](auto& s) -> auto& { return s.daemon.trust_policy; }),
      integer_key(
          "daemon.clock_skew_tolerance_s",
          "How far the clocks of manager and server may disagree, in seconds: a server "
          "certificate is accepted from its notBefore minus this to its notAfter plus this.",
          0, 86400, [](auto& s) -> auto& { return s.daemon.clock_skew_tolerance_s; }),
      integer_key(
          "daemon.credential_max_age_s",
          "Retained credentials older than this many seconds are destroyed and the server goes "
          "to auth_failed; 0 keeps them until used.",
          0, 31536000, [](auto& s) -> auto& { return s.daemon.credential_max_age_s; }),
      integer_key(
          "daemon.event_retention_count",
          "Most events kept in the database: beyond it the oldest connectivity events go; trust "
          "events are removed by age only.",
          1000, 1000000000, [](auto& s) -> auto& { return s.daemon.event_retention_count; }),
      integer_key(
          "daemon.event_retention_days", "Events older than this many days are deleted.", 1, 3650,
          [](auto& s) -> auto& { return s.daemon.event_retention_days; }),
      integer_key(
          "daemon.max_frame_bytes", "Largest application frame accepted from a server, in bytes.",
          1024, 67108864, [](auto& s) -> auto& { return s.daemon.max_frame_bytes; }),
      integer_key(
          "daemon.request_timeout_ms",
          "Deadline of one control request inside the daemon, in milliseconds.", 100, 600000,
          [](auto& s) -> auto& { return s.daemon.request_timeout_ms; }),
      integer_key(
          "daemon.peer_timeout_s",
          "Seconds without any data from a connected server after which its connection is "
          "declared dead (half-open, or the server stopped) and reconnected; the manager pings a "
          "quiet server after a third of this, and it is the TCP_USER_TIMEOUT of its sockets.",
          3, 3600, [](auto& s) -> auto& { return s.daemon.peer_timeout_s; }),
      listen_address_key(
          "metrics.listen",
          "Where the Prometheus endpoint (/metrics) listens, as IP:PORT; empty means off. Keep it "
          "on loopback unless a firewall guards it.",
          [](auto& s) -> auto& { return s.metrics.listen; }),
  };
  return table;
}

const std::vector<cross_rule>& cross_rules() {
  static const std::vector<cross_rule> rules = {
      {{"identity.renewal_warning_days", "identity.validity_days"},
       [](const settings& s) -> std::optional<std::string> {
         if (s.identity.renewal_warning_days < s.identity.validity_days) return std::nullopt;
         return "identity.renewal_warning_days must be less than identity.validity_days, got " +
                std::to_string(s.identity.renewal_warning_days) + " and " +
                std::to_string(s.identity.validity_days);
       }},
      {{"daemon.connect_timeout_ms", "daemon.handshake_timeout_ms"},
       [](const settings& s) -> std::optional<std::string> {
         if (s.daemon.connect_timeout_ms <= s.daemon.handshake_timeout_ms) return std::nullopt;
         return "daemon.connect_timeout_ms must be at most daemon.handshake_timeout_ms, got " +
                std::to_string(s.daemon.connect_timeout_ms) + " and " +
                std::to_string(s.daemon.handshake_timeout_ms);
       }},
      {{"daemon.backoff_initial_ms", "daemon.backoff_max_ms"},
       [](const settings& s) -> std::optional<std::string> {
         if (s.daemon.backoff_initial_ms <= s.daemon.backoff_max_ms) return std::nullopt;
         return "daemon.backoff_initial_ms must be at most daemon.backoff_max_ms, got " +
                std::to_string(s.daemon.backoff_initial_ms) + " and " +
                std::to_string(s.daemon.backoff_max_ms);
       }},
  };
  return rules;
}

// ---- Suggestions for misspelt keys. ----------------------------------------------------------

// Optimal string alignment distance: a swapped pair of letters, the commonest typo, costs one.
size_t edit_distance(std::string_view a, std::string_view b) {
  // One allocation for the whole table: this runs against every known name.
  const size_t width = b.size() + 1;
  std::vector<size_t> table((a.size() + 1) * width);
  auto d = [&](size_t i, size_t j) -> size_t& { return table[i * width + j]; };
  for (size_t i = 0; i <= a.size(); ++i) d(i, 0) = i;
  for (size_t j = 0; j <= b.size(); ++j) d(0, j) = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d(i, j) = std::min({d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d(i, j) = std::min(d(i, j), d(i - 2, j - 2) + 1);
    }
  }
  return d(a.size(), b.size());
}

// Every section name ("identity") and key path: the names a user may write.
const std::vector<std::string>& known_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& rule : key_table()) {
      for (size_t dot = rule.path.find('.'); dot != std::string::npos;
           dot = rule.path.find('.', dot + 1))
        out.push_back(rule.path.substr(0, dot));
      out.push_back(rule.path);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }();
  return names;
}

std::string leaf_of(std::string_view path) {
  auto dot = path.rfind('.');
  return std::string{dot == std::string_view::npos ? path : path.substr(dot + 1)};
}

std::optional<std::string> suggestion_for(const std::string& unknown) {
  constexpr size_t max_distance = 2;
  std::optional<std::string> best;
  size_t best_distance = max_distance + 1;
  for (const auto& name : known_names()) {
    // The distance is at least the difference in length: a long unknown key (hostile or pasted
    // by mistake) costs no quadratic work against every name.
    auto shorter = std::min(unknown.size(), name.size());
    if (std::max(unknown.size(), name.size()) - shorter > max_distance) continue;
    auto distance = edit_distance(unknown, name);
    if (distance < best_distance) {
      best = name;
      best_distance = distance;
    }
  }
  if (best) return best;
  // A known key written in the wrong section (or outside any) is far by edit distance but
  // obvious to a reader: same leaf name.
  auto leaf = leaf_of(unknown);
  for (const auto& rule : key_table())
    if (leaf_of(rule.path) == leaf) return rule.path;
  return std::nullopt;
}

// ---- The walk over a parsed document. --------------------------------------------------------

struct problem {
  uint32_t line = 0;  // 0: not tied to a line (a cross-key rule over two defaults)
  std::string text;
};

class document_reader {
 public:
  document_reader(const std::string& source, parse_context ctx)
      : source_(source), ctx_(std::move(ctx)) {}

  void read_table(const toml::table& table, const std::string& prefix) {
    for (const auto& [key, node] : table) {
      std::string path = prefix + std::string{key.str()};
      auto line = static_cast<uint32_t>(key.source().begin.line);
      if (auto rule = find_rule(path)) {
        if (rule->apply(node, ctx_, result_)) {
          lines_[path] = line;
        } else {
          add(line, path + " must be " + rule->requirement + ", got " + describe_value(node));
        }
      } else if (is_section(path)) {
        if (auto sub = node.as_table()) {
          read_table(*sub, path + ".");
        } else {
          add(line,
              path + " must be a table (a [" + path + "] section), got " + describe_value(node));
        }
      } else {
        std::string text = "unknown key '" + path + "'";
        if (auto hint = suggestion_for(path))
          text += "; did you mean '" + *hint + "'?";
        else
          text += "; certfleet.example.toml lists every key";
        add(line, std::move(text));
      }
    }
  }

  void check_across_keys() {
    if (!problems_.empty()) return;  // values may still be defaults standing in for bad ones
    for (const auto& rule : cross_rules()) {
      auto text = rule.check(result_);
      if (!text) continue;
      uint32_t line = 0;
      for (const auto& key : rule.keys) {
        if (auto it = lines_.find(key); it != lines_.end()) {
          line = it->second;
          break;
        }
      }
      add(line, std::move(*text));
    }
  }

  caf::expected<settings> finish() {
    if (problems_.empty()) return std::move(result_);
    std::stable_sort(problems_.begin(), problems_.end(),
                     [](const problem& a, const problem& b) { return a.line < b.line; });
    std::string message;
    for (const auto& p : problems_) {
      if (!message.empty()) message += '\n';
      message += source_ + ":";
      if (p.line != 0) message += std::to_string(p.line) + ":";
      message += " " + p.text;
    }
    return make_error(ec::bad_config, std::move(message));
  }

 private:
  static const key_rule* find_rule(const std::string& path) {
    for (const auto& rule : key_table())
      if (rule.path == path) return &rule;
    return nullptr;
  }

  static bool is_section(const std::string& path) {
    auto prefix = path + ".";
    for (const auto& rule : key_table())
      if (rule.path.compare(0, prefix.size(), prefix) == 0) return true;
    return false;
  }

  void add(uint32_t line, std::string text) { problems_.push_back({line, std::move(text)}); }

  const std::string& source_;
  parse_context ctx_;
  settings result_;
  std::map<std::string, uint32_t> lines_;
  std::vector<problem> problems_;
};

}  // namespace

master_key_location locate_master_key(const settings& s, const char* credentials_directory) {
  if (credentials_directory != nullptr && *credentials_directory != '\0') {
    std::filesystem::path file = std::filesystem::path(credentials_directory) / "master.key";
    std::error_code ignored;
    if (std::filesystem::exists(file, ignored))
      return {file, "systemd credential master.key (" + file.string() + ")", true};
  }
  if (!s.identity.master_key_file.empty())
    return {s.identity.master_key_file, "master key file " + s.identity.master_key_file.string(),
            false};
  auto file = s.state_dir / "master.key";
  return {file, "master key file " + file.string(), false};
}

caf::expected<settings> parse_settings(std::string_view toml_text, const std::string& source,
                                       const std::filesystem::path& base_dir) {
  toml::table document;
  try {
    document = toml::parse(toml_text, source);
  } catch (const toml::parse_error& err) {
    const auto& at = err.source().begin;
    return make_error(ec::bad_config, source + ":" + std::to_string(at.line) + ":" +
                                          std::to_string(at.column) + ": " +
                                          std::string{err.description()});
  }
  document_reader reader{source, parse_context{base_dir}};
  reader.read_table(document, "");
  reader.check_across_keys();
  return reader.finish();
}

caf::expected<settings> load_settings(const std::filesystem::path& file) {
  auto bytes = read_file(file);
  if (!bytes) {
    if (code_of(bytes.error()) == ec::not_found)
      return make_error(ec::not_found, "configuration file " + file.string() +
                                           " does not exist; create it (certfleet.example.toml "
                                           "documents every key) or name another file");
    return bytes.error();
  }
  std::error_code err;
  auto absolute = std::filesystem::absolute(file, err);
  auto base_dir = err ? file.parent_path() : absolute.parent_path();
  std::string_view text{reinterpret_cast<const char*>(bytes->data()), bytes->size()};
  return parse_settings(text, file.string(), base_dir);
}

std::vector<setting_description> describe_settings() {
  const settings defaults;
  std::vector<setting_description> out;
  for (const auto& rule : key_table())
    out.push_back({rule.path, rule.doc, rule.requirement, rule.render(defaults)});
  return out;
}

std::string render_settings(const settings& s) {
  // Top-level keys must come before any [section] header, or TOML would put them in that section.
  std::string top;
  std::vector<std::pair<std::string, std::string>> sections;  // name, body; in table order
  for (const auto& rule : key_table()) {
    auto dot = rule.path.rfind('.');
    if (dot == std::string::npos) {
      top += rule.path + " = " + rule.render(s) + "\n";
      continue;
    }
    auto name = rule.path.substr(0, dot);
    auto it = std::find_if(sections.begin(), sections.end(),
                           [&](const auto& section) { return section.first == name; });
    if (it == sections.end()) it = sections.emplace(sections.end(), name, std::string{});
    it->second += rule.path.substr(dot + 1) + " = " + rule.render(s) + "\n";
  }
  std::string out = top;
  for (const auto& [name, body] : sections) out += "\n[" + name + "]\n" + body;
  return out;
}

}  // namespace certfleet
