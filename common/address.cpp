#include "common/address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>

namespace certfleet {
namespace {

std::string_view strip_brackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    return host.substr(1, host.size() - 2);
  return host;
}

bool is_ipv4(std::string_view host) {
  in_addr a{};
  return ::inet_pton(AF_INET, std::string(host).c_str(), &a) == 1;
}

bool is_ipv6(std::string_view host) {
  in6_addr a{};
  return ::inet_pton(AF_INET6, std::string(host).c_str(), &a) == 1;
}

std::string byte_name(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02X", c);
  return buf;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '_';
}

caf::error bad_host(std::string_view host, const std::string& why) {
  // The host is only quoted when it is printable; otherwise the offending byte is named.
  std::string shown =
      check_printable("host", host) ? std::string{} : " \"" + std::string(host) + "\"";
  return make_error(ec::invalid_argument,
                    "host" + shown + " " + why +
                        "; give a hostname (letters, digits, '-', '.') or an IP address");
}

}  // namespace

std::string format_address(std::string_view host, uint16_t port) {
  auto bare = strip_brackets(host);
  if (bare.find(':') != std::string_view::npos)
    return "[" + std::string(bare) + "]:" + std::to_string(port);
  return std::string(bare) + ":" + std::to_string(port);
}

caf::error validate_host(std::string_view host) {
  if (host.empty()) return bad_host(host, "is empty");
  for (unsigned char c : host)
    if (c < 0x20 || c == 0x7f)
      return bad_host(host, "contains the control character " + byte_name(c));
  auto bare = strip_brackets(host);
  if (bare.find(':') != std::string_view::npos) {
    if (is_ipv6(bare)) return {};
    return bad_host(host, "is not a valid IPv6 address");
  }
  if (bare.size() != host.size()) return bad_host(host, "has brackets around a non-IPv6 address");
  if (is_ipv4(bare)) return {};
  std::string_view name = bare;
  if (name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return bad_host(host, "is not 1 to 253 characters long");
  size_t start = 0;
  std::string_view last;
  while (start <= name.size()) {
    auto dot = name.find('.', start);
    auto label =
        name.substr(start, dot == std::string_view::npos ? name.size() - start : dot - start);
    if (label.empty()) return bad_host(host, "has an empty label (two dots in a row)");
    if (label.size() > 63) return bad_host(host, "has a label longer than 63 characters");
    for (char c : label)
      if (!is_label_char(c))
        return bad_host(host, "contains '" + std::string(1, c) + "' (byte " +
                                  byte_name(static_cast<unsigned char>(c)) +
                                  "), which no hostname holds");
    if (label.front() == '-' || label.back() == '-')
      return bad_host(host, "has a label starting or ending with '-'");
    last = label;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (std::all_of(last.begin(), last.end(), is_digit))
    return bad_host(host, "looks numeric but is not an IPv4 address in dotted-quad form");
  return {};
}

std::string normalise_host(std::string_view host) {
  if (validate_host(host)) return std::string(host);
  auto bare = strip_brackets(host);
  if (bare.find(':') != std::string_view::npos) {
    in6_addr a{};
    ::inet_pton(AF_INET6, std::string(bare).c_str(), &a);
    char buf[INET6_ADDRSTRLEN];
    return ::inet_ntop(AF_INET6, &a, buf, sizeof(buf)) ? std::string(buf) : std::string(bare);
  }
  std::string out(bare);
  if (!is_ipv4(out) && out.size() > 1 && out.back() == '.') out.pop_back();
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

std::string normalised_address(std::string_view host, uint16_t port) {
  return format_address(normalise_host(host), port);
}

caf::error parse_address(std::string_view text, uint16_t default_port, std::string& host,
                         uint16_t& port) {
  auto fail = [&](const std::string& why) {
    std::string shown =
        check_printable("address", text) ? std::string{} : " \"" + std::string(text) + "\"";
    return make_error(ec::invalid_argument,
                      "address" + shown + " " + why +
                          "; write HOST, HOST:PORT or [IPv6]:PORT (default port " +
                          std::to_string(default_port) + ")");
  };
  std::string_view host_text, port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return fail("has no closing ']'");
    host_text = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail("has text after ']' that is not :PORT");
      port_text = rest.substr(1);
      if (port_text.empty()) return fail("ends with ':' but no port");
    }
  } else {
    auto first = text.find(':');
    if (first != std::string_view::npos && first == text.rfind(':')) {
      host_text = text.substr(0, first);
      port_text = text.substr(first + 1);
      if (port_text.empty()) return fail("ends with ':' but no port");
    } else {
      host_text = text;  // no colon, or a bare IPv6 literal
    }
  }
  if (host_text.empty()) return fail("has no host");
  if (auto err = validate_host(host_text)) return err;
  port = default_port;
  if (!port_text.empty()) {
    if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), is_digit))
      return fail("has a port that is not a number");
    auto value = std::stoul(std::string(port_text));
    if (value < 1 || value > 65535) return fail("has a port outside 1..65535");
    port = static_cast<uint16_t>(value);
  }
  host = normalise_host(host_text);
  return {};
}

caf::error check_printable(std::string_view what, std::string_view value) {
  auto bad = [&](size_t at, const std::string& why) {
    return make_error(ec::invalid_argument, std::string(what) + " " + why + " at byte " +
                                                std::to_string(at) +
                                                "; control characters are not allowed");
  };
  for (size_t i = 0; i < value.size();) {
    auto c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c == 0x7f) return bad(i, "contains the control character " + byte_name(c));
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (len == 0 || i + len > value.size()) return bad(i, "is not valid UTF-8");
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(value[i + k]) & 0xc0) != 0x80)
        return bad(i, "is not valid UTF-8");
    if (c == 0xc2 && static_cast<unsigned char>(value[i + 1]) < 0xa0)
      return bad(i, "contains a C1 control character");
    i += len;
  }
  return {};
}

}  // namespace certfleet
