#include "actors/context.hpp"

#include <algorithm>

namespace certfleet {

std::chrono::milliseconds random_delay(std::chrono::milliseconds max) {
  if (max.count() <= 0) return std::chrono::milliseconds{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<int64_t> dist{0, max.count()};
  return std::chrono::milliseconds{dist(rng)};
}

std::chrono::milliseconds backoff_delay(const daemon_settings& cfg, uint32_t attempt) {
  int64_t cap = cfg.backoff_max_ms;
  int64_t ceiling = cfg.backoff_initial_ms;
  for (uint32_t i = 0; i < attempt && ceiling < cap; ++i) ceiling *= 2;
  return random_delay(std::chrono::milliseconds{std::min(ceiling, cap)});
}

}  // namespace certfleet
