// A lock-free latency histogram for the daemon's status (handshake and collection latency).
//
// Values are microseconds, counted in log-linear buckets: exact below 8 us, then 8 buckets per
// power of two, so a bucket is at most 12.5 % wide. Percentiles are reported as the upper edge of
// the bucket that holds them (never optimistic), capped by the largest value seen.
//
// Thread-safety: `record` and `summarize` may run concurrently from any thread (relaxed atomics; a
// summary taken during recording may miss the values being recorded, never invent one).
// Footprint: 288 counters plus 17 for the export, about 2.4 KiB; the daemon keeps one per measured
// kind, not per server.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace certfleet {

class latency_histogram {
 public:
  struct summary {
    uint64_t count = 0;
    double p50_ms = 0;
    double p90_ms = 0;
    double p99_ms = 0;
    double max_ms = 0;
  };

  /// Upper bounds, in seconds, of the buckets exported to Prometheus (`le` labels, +Inf implied).
  static constexpr std::array<double, 15> export_bounds_s = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

  /// Exact counts at `export_bounds_s`, as a Prometheus histogram wants them.
  struct cumulative {
    std::array<uint64_t, export_bounds_s.size()> at_most{};  // values <= export_bounds_s[i]
    uint64_t count = 0;                                      // all values (the +Inf bucket)
    double sum_s = 0;
  };

  void record(std::chrono::microseconds d);
  summary summarize() const;
  cumulative cumulate() const;

  /// The bucket holding `us` and the bucket's exclusive upper edge in microseconds (exposed for
  /// tests).
  static size_t bucket_of(uint64_t us);
  static uint64_t upper_edge(size_t bucket);

  static constexpr size_t bucket_count = 288;

 private:
  std::array<std::atomic<uint64_t>, bucket_count> buckets_{};
  std::atomic<uint64_t> max_us_{0};
  // Non-cumulative counts per export bucket; the last one is above every bound.
  std::array<std::atomic<uint64_t>, export_bounds_s.size() + 1> exported_{};
  std::atomic<uint64_t> sum_us_{0};
};

}  // namespace certfleet
