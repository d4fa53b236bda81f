#include "agent/inventory.hpp"

#include <gtest/gtest.h>

namespace certfleet::agent {
namespace {

using std::chrono::minutes;

const auto t0 = std::chrono::system_clock::time_point{} + std::chrono::hours{24 * 20000};

TEST(synthetic_inventory, is_the_same_for_the_same_endpoint_at_the_same_time) {
  EXPECT_EQ(synthetic_inventory("backup-07", t0), synthetic_inventory("backup-07", t0));
  auto inv = synthetic_inventory("backup-07", t0);
  EXPECT_GE(inv.jobs.size(), 2u);
  EXPECT_LE(inv.jobs.size(), 8u);
  for (const auto& j : inv.jobs) {
    EXPECT_FALSE(j.name.empty());
    EXPECT_LE(j.last_run_unix_ms,
              std::chrono::duration_cast<std::chrono::milliseconds>(t0.time_since_epoch()).count());
  }
}

TEST(synthetic_inventory, differs_between_endpoints) {
  int differing = 0;
  for (int i = 1; i < 20; ++i)
    differing +=
        synthetic_inventory("fleet-0", t0) == synthetic_inventory("fleet-" + std::to_string(i), t0)
            ? 0
            : 1;
  EXPECT_EQ(differing, 19);
}

TEST(synthetic_inventory, jobs_run_again_as_time_passes_so_collection_is_observable) {
  auto before = synthetic_inventory("backup-07", t0);
  auto after = synthetic_inventory("backup-07", t0 + minutes{11});
  ASSERT_EQ(before.jobs.size(), after.jobs.size());
  for (size_t k = 0; k < before.jobs.size(); ++k) {
    EXPECT_EQ(before.jobs[k].name, after.jobs[k].name);
    // Every period is at most 10 minutes: each job has run since.
    EXPECT_GT(after.jobs[k].last_run_unix_ms, before.jobs[k].last_run_unix_ms);
  }
}

}  // namespace
}  // namespace certfleet::agent
