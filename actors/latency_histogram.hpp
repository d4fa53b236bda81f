// A lock-free latency histogram for the daemon's status (handshake and collection latency).
//
// Values are microseconds, counted in log-linear buckets: exact below 8 us, then 8 buckets per
// power of two, so a bucket is at most 12.5 % wide. Percentiles are reported as the upper edge of
// the bucket that holds them (never optimistic), capped by the largest value seen.
//
// Thread-safety: `record` and `summarize` may run concurrently from any thread (relaxed atomics; a
// summary taken during recording may miss the values being recorded, never invent one).
// Footprint: 288 counters, about 2.3 KiB; the daemon keeps one per measured kind, not per server.
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

  void record(std::chrono::microseconds d);
  summary summarize() const;

  /// The bucket holding `us` and the bucket's exclusive upper edge in microseconds (exposed for
  /// tests).
  static size_t bucket_of(uint64_t us);
  static uint64_t upper_edge(size_t bucket);

  static constexpr size_t bucket_count = 288;

 private:
  std::array<std::atomic<uint64_t>, bucket_count> buckets_{};
  std::atomic<uint64_t> max_us_{0};
};

}  // namespace certfleet
