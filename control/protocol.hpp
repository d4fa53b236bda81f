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

#include "common/address.hpp"
#include "common/error.hpp"
#include "common/jsonl.hpp"
#include "common/jsonl_server.hpp"
#include "common/vocabulary.hpp"

namespace certfleet::control {

/// The longest request line the daemon accepts, newline excluded. Longer ones are refused and the
/// connection closed, since the daemon cannot tell where the next request begins.
constexpr size_t max_request_line = 64 * 1024;

/// The port a backup server listens on when `server add` names none.
constexpr uint16_t default_server_port = 9401;

/// The names of `all_event_types` (common/vocabulary.hpp), in the order docs/control-api.md lists
/// them.
const std::vector<std::string>& event_types();

/// What a peer of the control socket may do.
enum class access_level { refused, read_only, full };

const char* to_string(access_level a);

using jsonl::peer_identity;

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

/// The same for a line the JSON-lines server already parsed into the object `doc` with `id`;
/// `doc["args"]` is moved into `out`.
caf::error parse_request(nlohmann::json& doc, const nlohmann::json& id, request& out);

// The reply and error shapes, the line reader and scrubbing are the JSON-lines codec's
// (common/jsonl.hpp), shared with the agent's control socket.
using jsonl::error_from_json;
using jsonl::error_json;
using jsonl::error_reply;
using jsonl::line_reader;
using jsonl::ok_reply;
using jsonl::parse_error_code;
using jsonl::scrub;
using jsonl::scrub_passwords;

// Argument accessors: each fails with `ec::invalid_argument` naming the op and the argument
// ("server.add: argument \"port\" must be an integer between 1 and 65535").

caf::expected<std::string> string_arg(const request& r, const char* name);
/// An optional string: `std::nullopt` when absent or null.
caf::expected<std::optional<std::string>> optional_string_arg(const request& r, const char* name);
caf::expected<uint64_t> uint_arg(const request& r, const char* name, uint64_t dflt, uint64_t max);
caf::expected<bool> bool_arg(const request& r, const char* name, bool dflt);
caf::expected<uint16_t> port_arg(const request& r, const char* name);

/// "host:port", with an IPv6 literal in brackets (common/address.hpp).
using certfleet::format_address;

/// `certfleet::parse_address` with the backup servers' default port (common/address.hpp): the host
/// comes back validated and normalised.
caf::error parse_address(const std::string& text, std::string& host, uint16_t& port);

}  // namespace certfleet::control
