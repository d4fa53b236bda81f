// certfleet-handshake-limit: the single-core TLS handshake ceiling that a connect storm is compared
// to, measured in the same run. Runs back-to-back in-memory handshakes on this one thread for a
// fixed wall-clock time and prints one JSON line:
//   {"loop":"bare","kind":"full","handshakes_per_second":...,"seconds":...,"count":...,...}
// The default loop is the bare Botan handshake (both ends, pin check only: nothing the product
// adds); `--product` runs the product's `tls_client_session` / `tls_server_session` instead, so the
// two together show what the session layer costs (benchmarks/in_memory_tls.hpp).
// It also reports the CPU time the process used, because on a shared machine wall-clock rate and
// CPU-bound rate differ when other processes compete for the core.
//
// Usage: certfleet-handshake-limit [--seconds N] [--resumed] [--product]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "benchmarks/in_memory_tls.hpp"

namespace {

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

int usage(const char* self) {
  std::cerr << "usage: " << self << " [--seconds N] [--resumed] [--product]\n"
            << "  --seconds N  how long to run the loop (default 10, wall clock)\n"
            << "  --resumed    resume every handshake after the first from the client's session "
               "cache\n"
            << "  --product    the product's TLS sessions instead of the bare Botan handshake\n";
  return 2;
}

// Runs `loop` for `seconds` and prints the JSON line; returns the exit code.
template <class Loop>
int measure(Loop& loop, const char* name, bool resumed, double seconds) {
  using namespace certfleet;
  // Warm-up: the first handshake builds Botan's lazily initialised tables and, in resumed mode,
  // fills the client's cache; neither belongs in the steady-state rate.
  for (int i = 0; i < 3; ++i) {
    if (auto r = loop.run_once(); !r) {
      std::cerr << "warm-up handshake failed: " << describe(r.error()) << "\n";
      return 1;
    }
  }

  using clock = std::chrono::steady_clock;
  const auto budget = std::chrono::duration<double>(seconds);
  uint64_t count = 0;
  uint64_t resumed_count = 0;
  const double cpu_start = process_cpu_seconds();
  const auto start = clock::now();
  auto now = start;
  while (now - start < budget) {
    auto r = loop.run_once();
    if (!r) {
      std::cerr << "handshake " << count + 1 << " failed: " << describe(r.error()) << "\n";
      return 1;
    }
    ++count;
    if (r->resumed) ++resumed_count;
    now = clock::now();
  }
  const double elapsed = std::chrono::duration<double>(now - start).count();
  const double cpu = process_cpu_seconds() - cpu_start;

  if (!resumed && resumed_count != 0) {
    std::cerr << resumed_count << " handshakes of the full loop were resumed; the result is not a "
              << "full-handshake rate\n";
    return 1;
  }
  if (resumed && resumed_count != count) {
    std::cerr << count - resumed_count << " handshakes of the resumed loop were full ones; the "
              << "result is not a resumption rate\n";
    return 1;
  }
  nlohmann::json out{
      {"loop", name},
      {"kind", resumed ? "resumed" : "full"},
      {"handshakes_per_second", double(count) / elapsed},
      {"seconds", elapsed},
      {"count", count},
      {"resumed_fraction", count ? double(resumed_count) / double(count) : 0.0},
      {"cpu_seconds", cpu},
      {"handshakes_per_cpu_second", cpu > 0 ? double(count) / cpu : 0.0},
  };
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace certfleet;
  double seconds = 10;
  bool resumed = false;
  bool product = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--resumed") {
      resumed = true;
    } else if (arg == "--product") {
      product = true;
    } else if (arg == "--seconds" && i + 1 < argc) {
      char* end = nullptr;
      seconds = std::strtod(argv[++i], &end);
      if (end == nullptr || *end != '\0' || !(seconds > 0)) {
        std::cerr << "--seconds needs a positive number, got '" << argv[i] << "'\n";
        return 2;
      }
    } else {
      return usage(argv[0]);
    }
  }

  if (product) {
    auto loop = bench::in_memory_handshake_loop::create(resumed);
    if (!loop) {
      std::cerr << "cannot set up the handshake loop: " << describe(loop.error()) << "\n";
      return 1;
    }
    return measure(**loop, "product", resumed, seconds);
  }
  auto loop = bench::bare_handshake_loop::create(resumed);
  if (!loop) {
    std::cerr << "cannot set up the handshake loop: " << describe(loop.error()) << "\n";
    return 1;
  }
  return measure(**loop, "bare", resumed, seconds);
}
