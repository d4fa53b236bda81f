#include "agent/inventory.hpp"

#include <array>
#include <cstdint>

namespace certfleet::agent {

namespace {

// FNV-1a, then a splitmix64 finaliser: stable across builds and platforms, unlike std::hash.
uint64_t mix(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

uint64_t hash_of(const std::string& s, uint64_t a = 0, uint64_t b = 0) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix(mix(h ^ mix(a + 0x9e3779b97f4a7c15ULL)) ^ b);
}

constexpr std::array<const char*, 5> job_types = {"full", "incremental", "synthetic full",
                                                  "backup copy", "replica"};
constexpr std::array<const char*, 8> workloads = {
    "SQL", "Exchange", "File server",        "Web farm",
    "ERP", "VDI",      "Domain controllers", "Mail archive"};

}  // namespace

wire::inventory synthetic_inventory(const std::string& server_id,
                                    std::chrono::system_clock::time_point now) {
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  wire::inventory inv;
  const uint64_t seed = hash_of(server_id);
  const size_t count = 2 + seed % 7;
  for (size_t k = 0; k < count; ++k) {
    const uint64_t jh = hash_of(server_id, k + 1);
    const int64_t period_ms = int64_t(3 + jh % 8) * 60'000;
    const int64_t phase_ms = int64_t((jh >> 8) % uint64_t(period_ms));
    const int64_t run = (now_ms - phase_ms) / period_ms;
    const uint64_t rh = hash_of(server_id, k + 1, uint64_t(run));

    wire::job_summary job;
    job.type = job_types[(jh >> 20) % job_types.size()];
    job.name = std::string(workloads[(jh >> 28) % workloads.size()]) + " " + job.type + " job " +
               std::to_string(k + 1);
    const uint64_t pct = rh % 100;
    job.last_result = pct < 78 ? "success" : pct < 92 ? "warning" : "failed";
    job.last_run_unix_ms = phase_ms + run * period_ms;
    // Between 64 MiB and about 256 GiB; a failed run wrote little.
    uint64_t size = (uint64_t{64} << 20) + (rh >> 16) % (uint64_t{256} << 30);
    job.size_bytes = job.last_result == std::string("failed") ? size / 100 : size;
    inv.jobs.push_back(std::move(job));
  }
  return inv;
}

}  // namespace certfleet::agent
