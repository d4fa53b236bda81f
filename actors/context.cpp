#include "actors/context.hpp"

#include <algorithm>
#include <mutex>
#include <random>

namespace certfleet {

random_fn system_random() {
  struct source {
    std::mutex mtx;
    std::mt19937_64 rng{std::random_device{}()};
  };
  auto src = std::make_shared<source>();
  return [src](uint64_t max) {
    std::uniform_int_distribution<uint64_t> dist{0, max};
    std::lock_guard<std::mutex> guard{src->mtx};
    return dist(src->rng);
  };
}

std::chrono::milliseconds random_delay(const random_fn& random, std::chrono::milliseconds max) {
  if (max.count() <= 0) return std::chrono::milliseconds{0};
  return std::chrono::milliseconds{
      static_cast<int64_t>(random(static_cast<uint64_t>(max.count())))};
}

std::chrono::milliseconds backoff_delay(const daemon_settings& cfg, uint32_t attempt,
                                        const random_fn& random) {
  int64_t cap = cfg.backoff_max_ms;
  int64_t ceiling = cfg.backoff_initial_ms;
  for (uint32_t i = 0; i < attempt && ceiling < cap; ++i) ceiling *= 2;
  return random_delay(random, std::chrono::milliseconds{std::min(ceiling, cap)});
}

}  // namespace certfleet
