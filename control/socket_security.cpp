#include "control/socket_security.hpp"

#include <errno.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "common/fs.hpp"

namespace certfleet::control {

caf::expected<std::optional<gid_t>> resolve_group(const std::string& name) {
  if (name.empty()) return std::optional<gid_t>{};
  group grp{};
  group* found = nullptr;
  std::vector<char> buf(16384);
  int rc;
  while ((rc = ::getgrnam_r(name.c_str(), &grp, buf.data(), buf.size(), &found)) == ERANGE)
    buf.resize(buf.size() * 2);
  if (rc != 0 || !found)
    return make_error(ec::bad_config, "daemon.read_only_group \"" + name +
                                          "\" is not a group on this system; create it (groupadd " +
                                          name + ") or leave daemon.read_only_group empty");
  return std::optional<gid_t>{found->gr_gid};
}

caf::error prepare_directory(const std::filesystem::path& dir, std::optional<gid_t> ro_gid) {
  mode_t want = ro_gid ? 0710 : 0700;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT)
      return make_error(ec::io_error, "cannot inspect control socket directory " + dir.string() +
                                          ": " + errno_text(errno));
    if (auto err = ensure_directory(dir, want)) return err;
    if (ro_gid && ::chown(dir.c_str(), static_cast<uid_t>(-1), *ro_gid) != 0)
      return make_error(ec::io_error, "cannot give control socket directory " + dir.string() +
                                          " to the read-only group: " + errno_text(errno));
    return {};
  }
  if (!S_ISDIR(st.st_mode))
    return make_error(ec::io_error, "control socket directory " + dir.string() +
                                        " is not a directory; set daemon.control_socket to a path "
                                        "in a private directory");
  char mode[8];
  std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
  if (st.st_uid != ::geteuid())
    return make_error(ec::insecure_permissions,
                      "control socket directory " + dir.string() + " belongs to uid " +
                          std::to_string(st.st_uid) + ", not to the daemon (uid " +
                          std::to_string(::geteuid()) + "); chown it or choose another path");
  if (st.st_mode & 0027)
    return make_error(ec::insecure_permissions,
                      "control socket directory " + dir.string() + " is mode " + mode +
                          "; others or the group could reach or replace the socket: run chmod " +
                          (ro_gid ? "710 " : "700 ") + dir.string());
  if (!ro_gid && (st.st_mode & 0070))
    return make_error(ec::insecure_permissions,
                      "control socket directory " + dir.string() + " is mode " + mode +
                          "; it must be 0700: run chmod 700 " + dir.string());
  if (ro_gid && (st.st_gid != *ro_gid || !(st.st_mode & 0010)))
    return make_error(ec::insecure_permissions,
                      "daemon.read_only_group is set but its members cannot reach control socket "
                      "directory " +
                          dir.string() + " (mode " + mode + ", gid " + std::to_string(st.st_gid) +
                          "): run chgrp " + std::to_string(*ro_gid) + " " + dir.string() +
                          " && chmod 710 " + dir.string() +
                          ", or point daemon.control_socket to a directory of its own");
  return {};
}

caf::error refused_peer(const peer_identity& peer) {
  return make_error(ec::permission_denied,
                    "uid " + std::to_string(peer.uid) +
                        " may not use certfleetd's control socket; run certfleet as the daemon's "
                        "user or root, or ask for membership of daemon.read_only_group");
}

caf::error read_only_refusal(const peer_identity& peer, const std::string& op) {
  return make_error(ec::permission_denied, op + " changes servers or trust; uid " +
                                               std::to_string(peer.uid) +
                                               " has read-only access (member of "
                                               "daemon.read_only_group)");
}

}  // namespace certfleet::control
