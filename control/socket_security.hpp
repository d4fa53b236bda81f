// The control socket's security rules that are not the socket itself: the read-only group, the
// socket directory's owner and mode, and the refusals a peer is told. The kernel's peer identity
// and the access each peer gets are in control/protocol.hpp (`decide_access`); the socket's own
// mode is set by the JSON-lines server between bind and listen (common/jsonl_server.hpp).
//
// Directory rules: it must be owned by the daemon's uid and mode 0700; with a read-only group it
// is 0710 with that group. A missing directory is created so.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "control/protocol.hpp"

namespace certfleet::control {

/// The gid of `daemon.read_only_group`; nullopt for an empty name, `ec::bad_config` for an unknown
/// group.
caf::expected<std::optional<gid_t>> resolve_group(const std::string& name);

/// Creates `dir` with the rules above, or checks an existing one: `ec::insecure_permissions`
/// (owner or mode, with the chmod/chown that fixes it), `ec::io_error`.
caf::error prepare_directory(const std::filesystem::path& dir, std::optional<gid_t> ro_gid);

/// What a refused peer is told before it is disconnected.
caf::error refused_peer(const peer_identity& peer);

/// What a read-only peer is told when it asks for `op`, which needs full access.
caf::error read_only_refusal(const peer_identity& peer, const std::string& op);

}  // namespace certfleet::control
