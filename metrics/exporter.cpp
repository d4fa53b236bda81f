#include "metrics/exporter.hpp"

#include <ctime>
#include <map>

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <spdlog/spdlog.h>

namespace certfleet::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Every state a server can be in, so a state with no server reads 0 rather than vanishing (an
// alert on "certificate_changed > 0" needs the series to exist).
constexpr server_state every_state[] = {
    server_state::pending_registration, server_state::registering,
    server_state::awaiting_validation,  server_state::trusted,
    server_state::certificate_changed,  server_state::certificate_mismatch,
    server_state::auth_failed,          server_state::reregistration_required,
};

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

MetricFamily gauge(std::string name, std::string help, double value) {
  auto f = family(std::move(name), std::move(help), MetricType::Gauge);
  ClientMetric m;
  m.gauge.value = value;
  f.metric.push_back(std::move(m));
  return f;
}

MetricFamily counter(std::string name, std::string help, double value) {
  auto f = family(std::move(name), std::move(help), MetricType::Counter);
  ClientMetric m;
  m.counter.value = value;
  f.metric.push_back(std::move(m));
  return f;
}

MetricFamily histogram(std::string name, std::string help, const latency_histogram::cumulative& c) {
  auto f = family(std::move(name), std::move(help), MetricType::Histogram);
  ClientMetric m;
  m.histogram.sample_count = c.count;
  m.histogram.sample_sum = c.sum_s;
  for (size_t i = 0; i < c.at_most.size(); ++i)
    m.histogram.bucket.push_back({c.at_most[i], latency_histogram::export_bounds_s[i]});
  m.histogram.bucket.push_back({c.count, std::numeric_limits<double>::infinity()});
  f.metric.push_back(std::move(m));
  return f;
}

// "2027-11-28T01:02:03Z" as seconds since the epoch; nullopt when it is not that shape.
std::optional<int64_t> parse_iso8601_utc(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

class status_collectable final : public prometheus::Collectable {
 public:
  explicit status_collectable(manager& m) : manager_(m) {}

  std::vector<MetricFamily> Collect() const override {
    auto s = manager_.status();
    std::vector<MetricFamily> out;

    auto servers = family("certfleet_servers", "Backup servers known to the manager, by state.",
                          MetricType::Gauge);
    std::map<std::string, size_t> counts(s.per_state.begin(), s.per_state.end());
    for (auto state : every_state) {
      ClientMetric m;
      m.label.push_back({"state", to_string(state)});
      auto it = counts.find(to_string(state));
      m.gauge.value = it == counts.end() ? 0.0 : static_cast<double>(it->second);
      servers.metric.push_back(std::move(m));
    }
    out.push_back(std::move(servers));
    out.push_back(gauge("certfleet_servers_connected",
                        "Servers with an established TLS connection.",
                        static_cast<double>(s.connected)));
    out.push_back(gauge("certfleet_pending_registrations",
                        "Servers whose sealed credentials wait for the server to be reached.",
                        static_cast<double>(counts["pending_registration"])));
    out.push_back(counter("certfleet_handshakes_total",
                          "TLS handshakes completed since the daemon started.",
                          static_cast<double>(s.handshakes)));
    out.push_back(counter("certfleet_handshakes_failed_total",
                          "Connect or TLS handshake attempts that failed since the daemon started.",
                          static_cast<double>(s.handshake_failures)));
    out.push_back(counter("certfleet_handshakes_resumed_total",
                          "Completed handshakes that resumed a saved TLS session.",
                          static_cast<double>(s.resumed_handshakes)));
    out.push_back(counter("certfleet_collections_total",
                          "Inventories collected from trusted servers since the daemon started.",
                          static_cast<double>(s.collections)));
    out.push_back(histogram("certfleet_handshake_duration_seconds",
                            "From the start of a connect to the TLS session established.",
                            s.handshake_buckets));
    out.push_back(histogram("certfleet_collection_duration_seconds",
                            "From a collect request sent to the inventory stored.",
                            s.collection_buckets));
    out.push_back(gauge("certfleet_credentials_retained",
                        "Servers whose sealed credentials are kept until they can register.",
                        static_cast<double>(s.credentials_retained)));
    out.push_back(gauge("certfleet_event_subscribers",
                        "Event subscribers, in process and over the control socket.",
                        static_cast<double>(s.subscribers)));
    out.push_back(gauge("certfleet_oldest_collection_age_seconds",
                        "Seconds since the trusted server collected least recently was last "
                        "collected (since it was added, if never); 0 when none is trusted.",
                        static_cast<double>(s.oldest_collection_age_s)));
    out.push_back(gauge("certfleet_server_certificates_expiring",
                        "Pinned server certificates within identity.renewal_warning_days of "
                        "their notAfter, expired ones included.",
                        static_cast<double>(s.server_certificates_expiring)));
    if (s.server_certificate_earliest_not_after_ms > 0)
      out.push_back(gauge("certfleet_server_certificate_earliest_expiry_timestamp_seconds",
                          "The earliest notAfter of a pinned server certificate, Unix time.",
                          static_cast<double>(s.server_certificate_earliest_not_after_ms / 1000)));
    out.push_back(histogram("certfleet_storage_write_duration_seconds",
                            "One write to the database: a group-committed batch with its fsync, "
                            "or one write to the log.",
                            s.storage_write_buckets));
    out.push_back(counter("certfleet_events_written_total",
                          "Durable trust-change events written (the last event sequence number).",
                          static_cast<double>(s.last_event_seq)));
    if (auto not_after = parse_iso8601_utc(s.manager_not_after)) {
      out.push_back(gauge("certfleet_manager_certificate_expiry_timestamp_seconds",
                          "When the manager's certificate expires (notAfter), Unix time.",
                          static_cast<double>(*not_after)));
      bool due = s.manager_renewal_due;
      out.push_back(gauge("certfleet_manager_certificate_renewal_due",
                          "1 once the manager's certificate is within identity."
                          "renewal_warning_days of its expiry, else 0.",
                          due ? 1.0 : 0.0));
    }
    return out;
  }

 private:
  manager& manager_;
};

class exporter_impl final : public exporter {
 public:
  exporter_impl(std::unique_ptr<prometheus::Exposer> exposer,
                std::shared_ptr<status_collectable> collectable)
      : exposer_(std::move(exposer)), collectable_(std::move(collectable)) {
    exposer_->RegisterCollectable(collectable_);
  }

  ~exporter_impl() override {
    // The HTTP threads stop before the collectable (and the manager it calls) can go.
    exposer_.reset();
  }

  uint16_t port() const override {
    auto ports = exposer_->GetListeningPorts();
    return ports.empty() ? 0 : static_cast<uint16_t>(ports.front());
  }

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<status_collectable> collectable_;
};

}  // namespace

caf::expected<std::unique_ptr<exporter>> exporter::start(manager& m, const settings& cfg) {
  const auto& address = cfg.metrics.listen;
  if (address.empty())
    return make_error(ec::invalid_argument, "metrics.listen is empty: the endpoint is off");
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    // One HTTP thread: scrapes come from a handful of Prometheus servers, seconds apart.
    exposer = std::make_unique<prometheus::Exposer>(address, 1);
  } catch (const std::exception& e) {
    return make_error(ec::io_error, "cannot serve metrics on " + address +
                                        " (metrics.listen): " + e.what() + "; is the port in use?");
  }
  auto collectable = std::make_shared<status_collectable>(m);
  std::unique_ptr<exporter> out =
      std::make_unique<exporter_impl>(std::move(exposer), std::move(collectable));
  spdlog::info("metrics: serving http://{}/metrics", address);
  return out;
}

}  // namespace certfleet::metrics
