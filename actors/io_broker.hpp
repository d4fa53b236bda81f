// The I/O broker: the only actor that touches sockets, and it only moves bytes.
//
// It runs on CAF's middleman thread. It adopts sockets whose connect the connector has already
// completed (docs/platform.md), remembers which server actor owns each connection, and
// forwards every chunk it reads to that owner as (bytes_atom, handle, chunk). Owners send back
// (write_atom, handle, bytes) and (close_atom, handle). No TLS, no parsing: crypto runs in the
// server actors on the scheduler's threads, so handshakes use both cores.
//
// clang-format off
//
//   to the broker                     what follows
//   ------------------------------    --------------------------------------------------------
//   (adopt_atom, fd, owner)           owner receives (adopted_atom, handle)
//   new data on handle                owner receives (bytes_atom, handle, std::vector<char>)
//   (write_atom, handle, bytes)       written and flushed
//   (close_atom, handle)              closed; the owner is not told again
//   peer closed / read error          owner receives (disconnected_atom, handle)
//
// clang-format on
#pragma once

#include <caf/io/broker.hpp>

namespace certfleet {

/// The most one read of a connection takes from its socket. CAF keeps a buffer of this size for
/// every open connection, so it is most of the broker's memory per connected server: 4 KiB holds a
/// whole handshake flight and a typical inventory in one read; a larger record (at most 16 KiB)
/// arrives in a few reads, each handed to the server actor as it comes.
inline constexpr size_t default_read_chunk = 4096;

/// The broker's behavior; spawn with
/// `system.middleman().spawn_broker(io_broker, default_read_chunk)`. (The argument also avoids a
/// CAF 0.17 defect: spawning a function without arguments dereferences a null tuple pointer, which
/// UndefinedBehaviorSanitizer reports.)
caf::behavior io_broker(caf::io::broker* self, size_t read_chunk);

}  // namespace certfleet
