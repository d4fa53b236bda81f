#include "actors/backoff.hpp"

#include <algorithm>

namespace certfleet {

std::chrono::milliseconds reconnect_backoff::next_delay(
    const std::function<uint64_t(uint64_t max)>& random) {
  int64_t cap = std::max<int64_t>(policy_.cap.count(), 0);
  int64_t ceiling = std::max<int64_t>(policy_.initial.count(), 0);
  for (uint32_t i = 0; i < failures_ && ceiling < cap; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, cap);
  if (failures_ < UINT32_MAX) ++failures_;
  if (ceiling <= 0) return std::chrono::milliseconds{0};
  return std::chrono::milliseconds{static_cast<int64_t>(random(static_cast<uint64_t>(ceiling)))};
}

void reconnect_backoff::connected(int64_t now_ms) {
  up_since_ms_ = now_ms;
}

void reconnect_backoff::healthy() {
  failures_ = 0;
}

void reconnect_backoff::disconnected(int64_t now_ms) {
  if (up_since_ms_ >= 0 && now_ms - up_since_ms_ >= policy_.healthy_after.count()) failures_ = 0;
  up_since_ms_ = -1;
}

void reconnect_backoff::reset() {
  failures_ = 0;
  up_since_ms_ = -1;
}

bool connectivity_limiter::up(int64_t now_ms) {
  auto expired = std::find_if(recorded_.begin(), recorded_.end(),
                              [&](int64_t t) { return now_ms - t < window_.count(); });
  recorded_.erase(recorded_.begin(), expired);
  current_recorded_ = recorded_.size() < max_cycles_;
  if (current_recorded_)
    recorded_.push_back(now_ms);
  else
    ++suppressed_;
  return current_recorded_;
}

bool connectivity_limiter::down() {
  bool r = current_recorded_;
  current_recorded_ = false;
  return r;
}

uint64_t connectivity_limiter::take_suppressed() {
  auto n = suppressed_;
  suppressed_ = 0;
  return n;
}

}  // namespace certfleet
