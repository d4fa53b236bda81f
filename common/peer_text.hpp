// Text that came from a peer (a backup server's denial detail or server id, a manager's account
// name), made safe to show or log: bounded in length, with every byte that could steer a terminal
// or forge a log line escaped. A hostile peer could otherwise print ESC sequences into an
// operator's terminal or end a log line with CR/LF and write a fake one after it.
//
// The result is printable ASCII plus any valid UTF-8 sequences of printable characters:
//   control bytes (0x00-0x1F, 0x7F) and bytes that are not part of valid UTF-8 -> \xNN
//   C1 controls (U+0080-U+009F) and line/paragraph separators (U+2028, U+2029)  -> \u{NNNN}
//   a backslash                                                     -> two backslashes
// so an escaped string can never be mistaken for an unescaped one. Text longer than `max_bytes`
// (counted in input bytes) is cut at a character boundary and ends with "...(N more bytes)".
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace certfleet {

/// The default bound for a single field from a peer.
inline constexpr size_t peer_text_max_bytes = 256;

/// `text` escaped and bounded as described above; never longer than about 4 * max_bytes + 32.
std::string peer_text(std::string_view text, size_t max_bytes = peer_text_max_bytes);

}  // namespace certfleet
