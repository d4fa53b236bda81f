// The daemon's Prometheus endpoint: GET /metrics on the address `metrics.listen` names.
//
// Every scrape asks the manager for its status (one request, answered by the supervisor) and
// renders it; nothing is sampled in between, so a scrape always shows the daemon as it is. The
// metric names and what they mean are listed in docs/metrics.md.
//
// Thread-safety: scrapes run on the exposer's own HTTP threads; the manager must outlive the
// exporter.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "actors/manager.hpp"
#include "config/settings.hpp"

namespace certfleet::metrics {

class exporter {
 public:
  /// Starts serving on `cfg.metrics.listen`. Fails with `ec::io_error` naming the address when
  /// it cannot listen there (in use, not a local address), `ec::invalid_argument` when it is empty.
  static caf::expected<std::unique_ptr<exporter>> start(manager& m, const settings& cfg);
  virtual ~exporter() = default;

  /// The port actually bound (the configured one, or the one the kernel chose for port 0).
  virtual uint16_t port() const = 0;
};

}  // namespace certfleet::metrics
