// Logging for certfleet's programs: spdlog to stderr, as text or one JSON object per line.
#pragma once

#include "common/error.hpp"
#include "config/settings.hpp"

namespace certfleet::cli {

/// Installs the default logger for `log` (level and format). Fails with `ec::bad_config` on an
/// unknown level or format. Safe to call again (SIGHUP reload).
caf::error setup_logging(const log_settings& log);

}  // namespace certfleet::cli
