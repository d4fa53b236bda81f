#include "actors/latency_histogram.hpp"

#include <algorithm>

namespace certfleet {
namespace {

constexpr uint64_t sub_buckets = 8;  // per power of two; 3 bits of mantissa

int floor_log2(uint64_t v) {
  return 63 - __builtin_clzll(v);
}

}  // namespace

size_t latency_histogram::bucket_of(uint64_t us) {
  if (us < sub_buckets) return static_cast<size_t>(us);
  int e = floor_log2(us);  // >= 3
  uint64_t mantissa = (us >> (e - 3)) & (sub_buckets - 1);
  size_t b = sub_buckets + static_cast<size_t>(e - 3) * sub_buckets + mantissa;
  return std::min(b, bucket_count - 1);
}

uint64_t latency_histogram::upper_edge(size_t bucket) {
  if (bucket < sub_buckets) return bucket + 1;
  uint64_t e = (bucket - sub_buckets) / sub_buckets + 3;
  uint64_t mantissa = (bucket - sub_buckets) % sub_buckets;
  return (sub_buckets + mantissa + 1) << (e - 3);
}

void latency_histogram::record(std::chrono::microseconds d) {
  uint64_t us = d.count() < 0 ? 0 : static_cast<uint64_t>(d.count());
  buckets_[bucket_of(us)].fetch_add(1, std::memory_order_relaxed);
  size_t e = 0;
  while (e < export_bounds_s.size() && static_cast<double>(us) > export_bounds_s[e] * 1e6) ++e;
  exported_[e].fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(us, std::memory_order_relaxed);
  uint64_t seen = max_us_.load(std::memory_order_relaxed);
  while (us > seen && !max_us_.compare_exchange_weak(seen, us, std::memory_order_relaxed)) {
  }
}

latency_histogram::summary latency_histogram::summarize() const {
  std::array<uint64_t, bucket_count> counts{};
  summary s;
  for (size_t i = 0; i < bucket_count; ++i) {
    counts[i] = buckets_[i].load(std::memory_order_relaxed);
    s.count += counts[i];
  }
  if (s.count == 0) return s;
  uint64_t max_us = max_us_.load(std::memory_order_relaxed);
  s.max_ms = static_cast<double>(max_us) / 1000.0;
  auto percentile = [&](double q) {
    // The smallest bucket whose cumulative count reaches q of all values.
    auto rank = static_cast<uint64_t>(q * static_cast<double>(s.count) + 0.999999);
    rank = std::max<uint64_t>(rank, 1);
    uint64_t seen = 0;
    for (size_t i = 0; i < bucket_count; ++i) {
      seen += counts[i];
      if (seen >= rank) return static_cast<double>(std::min(upper_edge(i), max_us)) / 1000.0;
    }
    return s.max_ms;
  };
  s.p50_ms = percentile(0.50);
  s.p90_ms = percentile(0.90);
  s.p99_ms = percentile(0.99);
  return s;
}

latency_histogram::cumulative latency_histogram::cumulate() const {
  cumulative c;
  for (size_t i = 0; i < export_bounds_s.size(); ++i) {
    c.count += exported_[i].load(std::memory_order_relaxed);
    c.at_most[i] = c.count;
  }
  c.count += exported_[export_bounds_s.size()].load(std::memory_order_relaxed);
  c.sum_s = static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6;
  return c;
}

}  // namespace certfleet
