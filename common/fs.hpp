// File-system helpers for state that must survive crashes and stay private.
//
// `write_file_atomically` writes to a temporary file in the same directory, fsyncs it, renames it
// over the target and fsyncs the directory: a reader sees either the old content or the new one,
// never a mix, even after a power loss. The `fs_hooks` parameter exists so tests can make the
// rename fail and prove the old file survives.
//
// Thread-safety: functions are safe to call concurrently on different paths.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace certfleet {

/// Seams for fault injection in tests; production code uses the defaults.
struct fs_hooks {
  std::function<int(const char* from, const char* to)> rename;
};

/// Atomically replaces `path` with `data`, created with permission bits `mode`.
/// On failure the previous content of `path` is untouched and the temporary file removed; a full
/// disk gives `ec::disk_full`, other failures `ec::io_error`, both naming the file.
caf::error write_file_atomically(const std::filesystem::path& path, const void* data, size_t size,
                                 mode_t mode, const fs_hooks& hooks = {});

/// Reads a whole file. Fails with `ec::not_found` or `ec::io_error` naming the file.
caf::expected<std::vector<uint8_t>> read_file(const std::filesystem::path& path);

/// Creates `dir` (and parents) when missing and sets it to `mode`.
caf::error ensure_directory(const std::filesystem::path& dir, mode_t mode);

/// Refuses a secret file that group or others may read or write, or that another user owns,
/// with a message naming the file and the fix ("run chmod 600 ...").
caf::error check_private_file(const std::filesystem::path& path);

/// Refuses a directory that group or others may write, or that another user owns.
caf::error check_private_directory(const std::filesystem::path& dir);

/// fsyncs a directory so a rename or unlink inside it is durable.
caf::error sync_directory(const std::filesystem::path& dir);

/// "strerror(errno)" as a std::string.
std::string errno_text(int err);

}  // namespace certfleet
