#include "actors/context.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <random>
#include <system_error>

#include <spdlog/spdlog.h>

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

void apply_peer_socket_options(int fd, const daemon_settings& cfg) {
  // The option is in milliseconds; the setting is bounded (config/settings.cpp), so this fits.
  unsigned int timeout_ms = static_cast<unsigned int>(cfg.peer_timeout_s) * 1000u;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms, sizeof timeout_ms) == 0) return;
  auto why = std::error_code{errno, std::generic_category()}.message();
  // Once: every connection to every server would fail the same way.
  static std::atomic<bool> warned{false};
  if (!warned.exchange(true))
    spdlog::warn(
        "cannot set TCP_USER_TIMEOUT on connections to servers: {}; a dead server is still "
        "detected by the application ping within daemon.peer_timeout_s",
        why);
}

}  // namespace certfleet
