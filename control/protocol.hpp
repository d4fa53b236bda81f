// The control socket's wire format and access rules, as pure functions shared by the daemon side
// (control/control_server.hpp) and the CLI (control/control_client.hpp). docs/control-api.md is the
// user-facing description; this header is its single implementation.
//
// Wire format: JSON lines. One request per line, `{"id": <number|string>, "op": "...", "args":
// {...}}`; one reply per line, `{"id": ..., "ok": true, "result": ...}` or `{"id": ..., "ok":
// false, "error": {"code": "<ec name>", "message": "...", "exit_code": N}}`. `events.subscribe`
// additionally streams `{"event": {...}}` lines and may end with `{"cutoff": {...}}`.
//
// Thread-safety: everything here is a pure function or a value type; `line_reader` is a plain
// object owned by one connection.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace certfleet::control {

/// The longest request line the daemon accepts, newline excluded. Longer ones are refused and the
/// connection closed, since the daemon cannot tell where the next request begins.
constexpr size_t max_request_line = 64 * 1024;

/// The port a backup server listens on when `server add` names none.
constexpr uint16_t default_server_port = 9401;

/// Every event type the daemon emits, in the order docs/control-api.md lists them.
const std::vector<std::string>& event_types();

/// What a peer of the control socket may do.
enum class access_level { refused, read_only, full };

const char* to_string(access_level a);

/// Who is on the other end of a connection, as SO_PEERCRED and SO_PEERGROUPS report it.
struct peer_identity {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups; may be empty when the kernel cannot say
};

/// Root and the daemon's own uid get full access; a member of `read_only_gid` (primary or
/// supplementary group) gets read-only access; anyone else is refused.
access_level decide_access(const peer_identity& peer, uid_t daemon_uid,
                           std::optional<gid_t> read_only_gid);

/// The access an op needs: `full` for anything that changes servers, trust or credentials,
/// `read_only` for status, list, show and events. Unknown ops give `std::nullopt`.
std::optional<access_level> required_access(std::string_view op);

/// One parsed request line.
struct request {
  nlohmann::json id;  // null when the line carried none (or could not be parsed)
  std::string op;
  nlohmann::json args = nlohmann::json::object();
};

/// Parses one request line (without its newline). On failure returns `ec::invalid_argument`
/// naming the problem (malformed JSON with the parser's position, a missing or ill-typed "op" or
/// "args", an unknown op), and `out.id` still holds the request's id when one could be read, so the
/// error reply can carry it.
caf::error parse_request(const std::string& line, request& out);

/// `{"id":..,"ok":true,"result":..}` as one line, newline included.
std::string ok_reply(const nlohmann::json& id, const nlohmann::json& result);

/// The error object `{"code","message","exit_code"}` for `err` (exit codes: common/exit_code.hpp).
nlohmann::json error_json(const caf::error& err);

/// `{"id":..,"ok":false,"error":{..}}` as one line, newline included.
std::string error_reply(const nlohmann::json& id, const caf::error& err);

/// The `ec` named by `name` (as `to_string(ec)` prints it), `ec::none` when unknown.
ec parse_error_code(std::string_view name);

/// Rebuilds a caf::error from a reply's error object; unknown codes become `ec::protocol_error`.
caf::error error_from_json(const nlohmann::json& error);

// Argument accessors: each fails with `ec::invalid_argument` naming the op and the argument
// ("server.add: argument \"port\" must be an integer between 1 and 65535").

caf::expected<std::string> string_arg(const request& r, const char* name);
/// An optional string: `std::nullopt` when absent or null.
caf::expected<std::optional<std::string>> optional_string_arg(const request& r, const char* name);
caf::expected<uint64_t> uint_arg(const request& r, const char* name, uint64_t dflt, uint64_t max);
caf::expected<bool> bool_arg(const request& r, const char* name, bool dflt);
caf::expected<uint16_t> port_arg(const request& r, const char* name);

/// Overwrites a string's characters before it is freed; used on lines and fields holding passwords.
void scrub(std::string& s);

/// Scrubs every "password" string anywhere in `j` (objects and arrays, recursively).
void scrub_passwords(nlohmann::json& j);

/// Splits a byte stream into lines of at most `max_line` bytes.
///
/// `feed` appends received bytes; `next` yields complete lines (without "\n", a trailing "\r" kept
/// as data) in order. When more than `max_line` bytes arrive without a newline, `overflowed()`
/// becomes true and stays true: the stream can no longer be split reliably. Consumed bytes are
/// scrubbed, since request lines may hold passwords.
class line_reader {
 public:
  explicit line_reader(size_t max_line = max_request_line) : max_line_(max_line) {}
  ~line_reader() { scrub(buffer_); }
  line_reader(const line_reader&) = delete;
  line_reader& operator=(const line_reader&) = delete;

  void feed(const char* data, size_t size);
  /// The next complete line into `line` (previous content scrubbed); false when none is ready.
  bool next(std::string& line);
  bool overflowed() const { return overflowed_; }

 private:
  size_t max_line_;
  std::string buffer_;
  size_t scanned_ = 0;  // bytes of buffer_ already known to hold no newline
  bool overflowed_ = false;
};

/// "host:port", with an IPv6 literal in brackets ("[::1]:9401").
std::string format_address(const std::string& host, uint16_t port);

/// Parses "HOST", "HOST:PORT", "[V6]" or "[V6]:PORT"; a bare IPv6 literal ("::1") is taken as a
/// host. Fails with `ec::invalid_argument` on an empty host, a bad port or an unclosed bracket.
caf::error parse_address(const std::string& text, std::string& host, uint16_t& port);

}  // namespace certfleet::control
