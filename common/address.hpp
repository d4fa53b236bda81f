// Network addresses as certfleet shows, parses and compares them: one formatter, one parser, one
// normaliser for every module.
//
// Shape: "host:port", an IPv6 literal always in brackets ("[fd00::5]:9401"). A host is an IP
// literal (IPv4 dotted quad, IPv6) or a hostname: labels of letters, digits, '-' and '_' (1 to 63
// bytes, not starting or ending with '-'), at most 253 bytes, the last label not all digits (so
// "2130706433" or "127.000.0.1" cannot reach the resolver and come back as 127.0.0.1). Nothing
// else: no control characters, no NUL, no spaces, no zone ids.
//
// Normal form (what duplicates are checked on): brackets dropped; IPv6 as inet_ntop prints it
// (lowercase, compressed); hostnames lowercased, one trailing dot dropped.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace certfleet {

/// "host:port", with an IPv6 literal in brackets ("[::1]:9401"). `host` may already carry
/// brackets; they are not doubled.
std::string format_address(std::string_view host, uint16_t port);

/// Succeeds when `host` (brackets allowed around an IPv6 literal) is an IP literal or a hostname
/// as above; otherwise `ec::invalid_argument` saying what is wrong with it (control characters are
/// named by their code, never echoed raw).
caf::error validate_host(std::string_view host);

/// `host` in normal form (see above); a host that fails `validate_host` is returned unchanged.
std::string normalise_host(std::string_view host);

/// `format_address(normalise_host(host), port)`: the key two addresses are the same server by.
std::string normalised_address(std::string_view host, uint16_t port);

/// Parses "HOST", "HOST:PORT", "[V6]" or "[V6]:PORT"; a bare IPv6 literal ("::1") is taken as a
/// host. `host` comes back validated and normalised, `port` is `default_port` when none is given.
/// Fails with `ec::invalid_argument` on an empty or invalid host, a bad port or an unclosed
/// bracket.
caf::error parse_address(std::string_view text, uint16_t default_port, std::string& host,
                         uint16_t& port);

/// Succeeds when `value` holds no control characters (C0 including NUL, DEL, C1, ESC, CR, LF) and
/// is valid UTF-8; otherwise `ec::invalid_argument` naming `what` and the first offending byte.
/// For every name, account and label that reaches a listing or a log.
caf::error check_printable(std::string_view what, std::string_view value);

}  // namespace certfleet
