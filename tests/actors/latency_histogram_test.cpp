#include "actors/latency_histogram.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace certfleet {
namespace {

using std::chrono::microseconds;

TEST(LatencyHistogram, AnEmptyHistogramSummarisesToZeros) {
  latency_histogram h;
  auto s = h.summarize();
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.p99_ms, 0.0);
  EXPECT_EQ(s.max_ms, 0.0);
}

TEST(LatencyHistogram, EveryValueFallsIntoABucketAtMostOneEighthWide) {
  for (uint64_t us : {0ull, 1ull, 7ull, 8ull, 9ull, 15ull, 16ull, 17ull, 1000ull, 123456ull,
                      999999ull, 60000000ull}) {
    size_t b = latency_histogram::bucket_of(us);
    uint64_t upper = latency_histogram::upper_edge(b);
    uint64_t lower = b == 0 ? 0 : latency_histogram::upper_edge(b - 1);
    EXPECT_LE(lower, us) << us;
    EXPECT_LT(us, upper) << us;
    EXPECT_LE(static_cast<double>(upper - lower), 1.0 + static_cast<double>(us) / 8.0) << us;
  }
}

TEST(LatencyHistogram, PercentilesNeverUnderstateAndAreCappedByTheMaximum) {
  latency_histogram h;
  // 1..1000 ms, one each: p50 is 500 ms, p99 990 ms, max 1000 ms.
  for (int ms = 1; ms <= 1000; ++ms) h.record(microseconds{ms * 1000});
  auto s = h.summarize();
  EXPECT_EQ(s.count, 1000u);
  EXPECT_GE(s.p50_ms, 500.0);
  EXPECT_LE(s.p50_ms, 500.0 * 1.125);
  EXPECT_GE(s.p99_ms, 990.0);
  EXPECT_LE(s.p99_ms, 1000.0);
  EXPECT_DOUBLE_EQ(s.max_ms, 1000.0);
}

TEST(LatencyHistogram, ConcurrentRecordersLoseNoValue) {
  latency_histogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&h, t] {
      for (int i = 0; i < 10000; ++i) h.record(microseconds{(t + 1) * 1000 + i % 7});
    });
  for (auto& t : threads) t.join();
  auto s = h.summarize();
  EXPECT_EQ(s.count, 40000u);
  EXPECT_GE(s.max_ms, 4.006);
}

TEST(LatencyHistogram, NegativeDurationsCountAsZero) {
  latency_histogram h;
  h.record(microseconds{-5});
  auto s = h.summarize();
  EXPECT_EQ(s.count, 1u);
  EXPECT_EQ(s.max_ms, 0.0);
}

TEST(LatencyHistogram, ExportBucketsCountExactlyAtTheirBounds) {
  latency_histogram h;
  h.record(microseconds{500});         // exactly the first bound: counted in it
  h.record(microseconds{501});         // just above: next bucket
  h.record(microseconds{40'000});      // <= 0.05 s
  h.record(microseconds{60'000'000});  // above every bound: only in +Inf
  auto c = h.cumulate();
  EXPECT_EQ(c.count, 4u);
  EXPECT_EQ(c.at_most[0], 1u);      // <= 0.0005
  EXPECT_EQ(c.at_most[1], 2u);      // <= 0.001
  EXPECT_EQ(c.at_most[6], 3u);      // <= 0.05
  EXPECT_EQ(c.at_most.back(), 3u);  // <= 30
  EXPECT_NEAR(c.sum_s, 0.0005 + 0.000501 + 0.04 + 60.0, 1e-9);
}

}  // namespace
}  // namespace certfleet
