// The JSON-lines codec both control sockets speak (the daemon's, docs/control-api.md, and the
// agent's fleet.sock, docs/agent.md): one JSON object per line, one reply per request.
//
// Reply shapes, the same on both sockets:
//   {"id": <the request's id, or null>, "ok": true,  "result": <object>}
//   {"id": <the request's id, or null>, "ok": false, "error": {"code": "<ec name>",
//                                                              "message": "<sentence>",
//                                                              "exit_code": N}}
// `exit_code` is what a certfleet program exits with for that error (common/exit_code.hpp).
//
// Request lines may carry passwords: `line_reader` scrubs the bytes it has consumed, and `scrub` /
// `scrub_passwords` overwrite strings before they are freed.
//
// Thread-safety: pure functions and value types; a `line_reader` belongs to one connection.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace certfleet::jsonl {

/// The longest request line a server accepts by default, newline excluded.
constexpr size_t default_max_line = 64 * 1024;

/// `j` as one line, newline included; invalid UTF-8 is replaced, never thrown on.
std::string dump_line(const nlohmann::json& j);

/// `{"id":..,"ok":true,"result":..}` as one line, newline included.
std::string ok_reply(const nlohmann::json& id, const nlohmann::json& result);

/// The error object `{"code","message","exit_code"}` for `err`.
nlohmann::json error_json(const caf::error& err);

/// `{"id":..,"ok":false,"error":{..}}` as one line, newline included.
std::string error_reply(const nlohmann::json& id, const caf::error& err);

/// The `ec` named by `name` (as `to_string(ec)` prints it), `ec::none` when unknown.
ec parse_error_code(std::string_view name);

/// Rebuilds a caf::error from a reply's error object; unknown codes become `ec::protocol_error`.
caf::error error_from_json(const nlohmann::json& error);

/// Parses one request line (without its newline) into a JSON object `doc` and its `id` (null when
/// absent). Fails with `ec::invalid_argument` for a line that is not JSON (naming the byte where it
/// breaks), not an object, or whose "id" is neither an integer, a string nor null; `id` stays null
/// then, except for a bad id type.
caf::error parse_line(const std::string& line, nlohmann::json& doc, nlohmann::json& id);

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
  explicit line_reader(size_t max_line = default_max_line) : max_line_(max_line) {}
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

}  // namespace certfleet::jsonl
