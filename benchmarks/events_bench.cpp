// certfleet-events-bench: events per second through the real event bus (events per second to 1
// and to 100 subscribers; benchmarks/RESULTS.md has the targets and the figures).
//
// Each measurement builds what the daemon builds for its bus: a daemon_context on a fresh state
// directory under a mkdtemp directory (real RocksDB, real master key and manager identity), a CAF
// actor system with its default scheduler, and `spawn_event_bus`. Subscribers subscribe with
// `subscribe_events`, exactly as `manager::subscribe` does. Nothing is simulated:
//
//   live      one producer thread appends connection_up-sized events with
//             `state_store::append_events` (every call fsynced by the store), `batch` per call, and
//             sends (published_atom, stored events) to the bus after each call (--publish seq: the
//             last seq alone, as the server actors do); each subscriber's callback counts and
//             checks that seqs arrive gap-free and in order. Rate = events delivered to each
//             subscriber / (last delivery - first append). The producer keeps at most `window`
//             events in flight beyond the slowest subscriber, so what is measured is the rate the
//             bus sustains without cutting anyone off (the cut-off is the storm benchmark's
//             subject); cut-offs are counted and must be zero.
//   replay    N events already stored; one subscriber with since = 0; rate = N / (time from the
//             subscribe call to the last delivery).
//   append    append_events alone, to show how much of `live` the store takes.
//
// Every measurement is repeated `--runs` times and reported as median and range. Stores are
// measured on /tmp (ext4 on a virtio disk here, so the store's fsync is real) and, unless
// --fast-dir is empty, on /dev/shm (tmpfs: fsync costs nothing, which shows the bus's own limit).
// The store API has no unsynced event append, so "without sync" is approximated this way.
//
// Output: a Markdown table on stdout, then one JSON line (also written to --json PATH).
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"
#include "actors/context.hpp"
#include "actors/event_bus.hpp"
#include "benchmarks/temp_dir.hpp"
#include "crypto/identity.hpp"
#include "crypto/sealing.hpp"
#include "storage/state_store.hpp"

namespace certfleet {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using json = nlohmann::json;

struct options {
  double seconds = 5;
  int runs = 5;
  std::vector<size_t> subscribers{1, 100};
  size_t batch = 256;
  size_t replay_events = 1000000;
  size_t window = 32768;
  bool publish_batch = true;  // (published_atom, events) rather than (published_atom, last seq)
  fs::path disk_dir = "/tmp";
  fs::path fast_dir = "/dev/shm";
  std::string json_path;
};

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what);
}

template <class T>
T must(caf::expected<T> v, const std::string& what) {
  if (!v) fail(what + ": " + describe(v.error()));
  return std::move(*v);
}

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
      .count();
}

using bench::temp_dir;

// A connection_up event as server_actor writes it (make_event with empty details).
event_record connection_up(size_t n) {
  char id[16];
  std::snprintf(id, sizeof id, "s-%08zx", 0x1f3a0000 + n % 10000);
  event_record e;
  e.type = "connection_up";
  e.server_id = id;
  e.address = "backup-" + std::to_string(n % 10000) + ".eu-west.example.net:9401";
  e.details = "{}";
  return e;
}

std::vector<event_record> make_batch(size_t first, size_t count) {
  std::vector<event_record> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) out.push_back(connection_up(first + i));
  return out;
}

// The daemon's bus on a fresh state directory; the teardown mirrors manager::stop.
class bus_env {
 public:
  explicit bus_env(const fs::path& base) : dir_(base) {
    settings cfg;
    cfg.state_dir = dir_.path();
    // The bus trims once a minute; nothing the benchmark stored may be trimmed under it.
    cfg.daemon.event_retention_count = INT_MAX;
    cfg.daemon.event_retention_days = 36500;
    auto key = must(master_key::create(dir_.path() / "master.key"), "creating the master key");
    auto id = must(identity::generate({"certfleet-events-bench", "certfleet"},
                                      std::chrono::hours{24}, "manager"),
                   "generating the manager identity");
    ctx_ = std::make_shared<daemon_context>(cfg, std::move(key), std::move(id));
    ctx_->store = must(state_store::open(dir_.path() / "state"), "opening the state store");
    sys_cfg_.set("logger.console-verbosity", caf::atom("quiet"));
    sys_ = std::make_unique<caf::actor_system>(sys_cfg_);
    ctx_->bus = spawn_event_bus(*sys_, ctx_);
  }

  ~bus_env() {
    caf::anon_send(ctx_->bus, stop_atom::value);
    sys_->await_all_actors_done();
    ctx_->bus = caf::actor{};
    sys_.reset();
    ctx_->store.reset();
  }

  bus_env(const bus_env&) = delete;
  bus_env& operator=(const bus_env&) = delete;

  state_store& store() { return *ctx_->store; }
  caf::actor_system& sys() { return *sys_; }
  const caf::actor& bus() { return ctx_->bus; }

 private:
  temp_dir dir_;
  context_ptr ctx_;
  caf::actor_system_config sys_cfg_;
  std::unique_ptr<caf::actor_system> sys_;
};

// What the subscribers' callbacks report to the measuring thread.
class delivery_board {
 public:
  // One subscriber's counters, on its own cache line: callbacks run on different threads.
  struct alignas(64) probe {
    std::atomic<uint64_t> delivered{0};
    std::atomic<int64_t> done_ns{0};
    uint64_t next_seq = 0;  // only the subscriber's delivery thread touches it
  };

  delivery_board(size_t subscribers, uint64_t first_seq) : probes_(subscribers) {
    for (auto& p : probes_) p.next_seq = first_seq;
  }

  // The callback of subscriber `i`: counts, checks order, and wakes the producer now and then.
  bool on_event(size_t i, const event_record& e) {
    auto& p = probes_[i];
    if (e.seq != p.next_seq) order_errors_.fetch_add(1, std::memory_order_relaxed);
    p.next_seq = e.seq + 1;
    // seq_cst with the store in wait_until_all_delivered: one of the two sides sees the other.
    auto n = p.delivered.fetch_add(1) + 1;
    if (n == target_.load()) {
      int64_t zero = 0;
      p.done_ns.compare_exchange_strong(zero, now_ns());
      wake();
    } else if (n % 4096 == 0) {
      wake();
    }
    return true;
  }

  void on_cutoff() {
    cutoffs_.fetch_add(1);
    wake();
  }

  // Blocks until the slowest subscriber is at most `window` events behind `appended`.
  void wait_for_room(uint64_t appended, uint64_t window) {
    std::unique_lock<std::mutex> lock{mtx_};
    cv_.wait(lock, [&] { return cutoffs_.load() > 0 || appended - slowest() <= window; });
  }

  // Announces that `target` events were published and blocks until every subscriber got them
  // (or `deadline` passes). Returns the time of the last delivery, 0 on timeout or cut-off.
  int64_t wait_until_all_delivered(uint64_t target, std::chrono::seconds deadline) {
    target_.store(target);
    std::unique_lock<std::mutex> lock{mtx_};
    // A subscriber that was already done before the target was known finished about now.
    for (auto& p : probes_) {
      int64_t zero = 0;
      if (p.delivered.load() >= target) p.done_ns.compare_exchange_strong(zero, now_ns());
    }
    bool done = cv_.wait_for(lock, deadline, [&] {
      return cutoffs_.load() > 0 || std::all_of(probes_.begin(), probes_.end(), [](const probe& p) {
               return p.done_ns.load() != 0;
             });
    });
    if (!done || cutoffs_.load() > 0) return 0;
    int64_t last = 0;
    for (auto& p : probes_) last = std::max(last, p.done_ns.load());
    return last;
  }

  uint64_t order_errors() const { return order_errors_.load(); }
  uint64_t cutoffs() const { return cutoffs_.load(); }

 private:
  uint64_t slowest() const {
    uint64_t low = UINT64_MAX;
    for (auto& p : probes_) low = std::min(low, p.delivered.load(std::memory_order_relaxed));
    return low;
  }

  // Taking the mutex before notifying means a waiter that just checked its predicate cannot
  // miss this wake-up.
  void wake() {
    { std::lock_guard<std::mutex> guard{mtx_}; }
    cv_.notify_all();
  }

  std::vector<probe> probes_;
  std::atomic<uint64_t> target_{UINT64_MAX};
  std::atomic<uint64_t> order_errors_{0};
  std::atomic<uint64_t> cutoffs_{0};
  std::mutex mtx_;
  std::condition_variable cv_;
};

struct run_result {
  double events_per_second = 0;  // per subscriber for live and replay; stored for append
  double cpu_per_wall = 0;       // process CPU seconds per wall second (2 = both cores busy)
  uint64_t events = 0;
};

std::vector<std::unique_ptr<event_subscription>> subscribe_all(bus_env& env, delivery_board& board,
                                                               size_t n, uint64_t since) {
  std::vector<std::unique_ptr<event_subscription>> subs;
  for (size_t i = 0; i < n; ++i)
    subs.push_back(must(subscribe_events(
                            env.sys(), env.bus(), since, {},
                            [&board, i](const event_record& e) { return board.on_event(i, e); },
                            [&board](uint64_t, const std::string&) { board.on_cutoff(); }),
                        "subscribing"));
  return subs;
}

void check_clean(const delivery_board& board, const std::string& what) {
  if (board.cutoffs() > 0)
    fail(what + ": " + std::to_string(board.cutoffs()) +
         " subscribers were cut off; lower --window below the subscriber queue length");
  if (board.order_errors() > 0)
    fail(what + ": " + std::to_string(board.order_errors()) +
         " events arrived out of order or with a gap; the bus broke its contract");
}

run_result measure_live(const options& opt, const fs::path& base, size_t subscribers) {
  bus_env env{base};
  auto first = env.store().last_event_seq() + 1;
  delivery_board board{subscribers, first};
  auto subs = subscribe_all(env, board, subscribers, first - 1);
  auto templ = make_batch(0, opt.batch);
  auto cpu0 = process_cpu_seconds();
  auto t0 = now_ns();
  auto stop_at = clock_type::now() + std::chrono::duration<double>(opt.seconds);
  uint64_t appended = 0;
  while (clock_type::now() < stop_at) {
    board.wait_for_room(appended, opt.window);
    if (board.cutoffs() > 0) break;
    auto stored = must(env.store().append_events(templ), "appending events");
    appended += stored.size();
    if (opt.publish_batch)
      caf::anon_send(env.bus(), published_atom::value, std::move(stored));
    else
      caf::anon_send(env.bus(), published_atom::value, stored.back().seq);
  }
  auto end = board.wait_until_all_delivered(appended, std::chrono::seconds{120});
  auto cpu = process_cpu_seconds() - cpu0;
  std::string what = "live, " + std::to_string(subscribers) + " subscribers";
  check_clean(board, what);
  if (end == 0) fail(what + ": not every event was delivered within 120 s");
  double wall = double(end - t0) / 1e9;
  return {double(appended) / wall, cpu / wall, appended};
}

// Replays the store of `env` (holding `events` events) to one subscriber with since = 0.
run_result measure_replay(bus_env& env, uint64_t events) {
  delivery_board board{1, 1};
  auto cpu0 = process_cpu_seconds();
  auto t0 = now_ns();
  auto subs = subscribe_all(env, board, 1, 0);
  auto end = board.wait_until_all_delivered(events, std::chrono::seconds{300});
  auto cpu = process_cpu_seconds() - cpu0;
  check_clean(board, "replay");
  if (end == 0) fail("replay: not every event was delivered within 300 s");
  double wall = double(end - t0) / 1e9;
  return {double(events) / wall, cpu / wall, events};
}

run_result measure_append(const options& opt, const fs::path& base) {
  temp_dir dir{base};
  auto store = must(state_store::open(dir.path() / "state"), "opening the state store");
  auto templ = make_batch(0, opt.batch);
  auto cpu0 = process_cpu_seconds();
  auto t0 = clock_type::now();
  auto stop_at = t0 + std::chrono::duration<double>(opt.seconds);
  uint64_t appended = 0;
  while (clock_type::now() < stop_at)
    appended += must(store->append_events(templ), "appending events").size();
  double wall = std::chrono::duration<double>(clock_type::now() - t0).count();
  auto cpu = process_cpu_seconds() - cpu0;
  return {double(appended) / wall, cpu / wall, appended};
}

struct summary {
  std::string name;
  std::string unit;
  std::vector<run_result> runs;
  double factor = 1;  // for "deliveries/s total": events/s per subscriber x subscribers

  std::vector<double> rates() const {
    std::vector<double> r;
    for (auto& x : runs) r.push_back(x.events_per_second * factor);
    std::sort(r.begin(), r.end());
    return r;
  }
  static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    auto n = v.size();
    return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  double cpu() const {
    std::vector<double> c;
    for (auto& x : runs) c.push_back(x.cpu_per_wall);
    return median(c);
  }
};

std::string grouped(double x) {
  auto s = std::to_string(static_cast<uint64_t>(x + 0.5));
  for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
  return s;
}

void progress(const std::string& what, int run, int runs) {
  std::cerr << what << ", run " << run << " of " << runs << " ...\n";
}

int run(const options& opt) {
  std::vector<fs::path> dirs{opt.disk_dir};
  if (!opt.fast_dir.empty()) dirs.push_back(opt.fast_dir);
  auto label = [&](const fs::path& d) {
    return d == opt.fast_dir ? std::string{"tmpfs "} + d.string() : "disk " + d.string();
  };
  // Runs are interleaved (run 1 of everything, then run 2, ...) so that a change in the load of
  // this shared machine hits every measurement alike.
  struct measurement {
    summary result;
    std::function<run_result()> once;
    size_t subscribers;
  };
  std::vector<measurement> plan;
  for (auto& d : dirs)
    plan.push_back({{"append_events alone, " + std::to_string(opt.batch) + "/call, " + label(d),
                     "events/s stored",
                     {}},
                    [&opt, d] { return measure_append(opt, d); },
                    0});
  for (auto n : opt.subscribers)
    for (auto& d : dirs)
      plan.push_back(
          {{"live, " + std::to_string(n) + " subscriber" + (n == 1 ? "" : "s") + ", " + label(d),
            "events/s per subscriber",
            {}},
           [&opt, d, n] { return measure_live(opt, d, n); },
           n});
  for (int r = 1; r <= opt.runs; ++r)
    for (auto& m : plan) {
      progress(m.result.name, r, opt.runs);
      m.result.runs.push_back(m.once());
    }
  std::vector<summary> out;
  for (auto& m : plan) {
    out.push_back(m.result);
    if (m.subscribers > 1) {
      summary total = m.result;
      total.name += ", all subscribers";
      total.unit = "deliveries/s total";
      total.factor = double(m.subscribers);
      out.push_back(std::move(total));
    }
  }
  if (opt.replay_events > 0) {
    bus_env env{opt.disk_dir};
    std::cerr << "storing " << opt.replay_events << " events for the replay ...\n";
    for (size_t done = 0; done < opt.replay_events;) {
      auto n = std::min<size_t>(4096, opt.replay_events - done);
      done += must(env.store().append_events(make_batch(done, n)), "storing events").size();
    }
    // Publish them as their writers would have, and let the bus move its head past them (a
    // subscription is answered only after the bus handled the publication) before timing.
    caf::anon_send(env.bus(), published_atom::value, env.store().last_event_seq());
    {
      delivery_board idle{1, env.store().last_event_seq() + 1};
      subscribe_all(env, idle, 1, env.store().last_event_seq());
    }
    summary s{"replay of " + grouped(double(opt.replay_events)) + " stored events, since=0, " +
                  label(opt.disk_dir),
              "events/s",
              {}};
    for (int r = 1; r <= opt.runs; ++r) {
      progress(s.name, r, opt.runs);
      s.runs.push_back(measure_replay(env, opt.replay_events));
    }
    out.push_back(std::move(s));
  }

  std::cout << "| measurement | unit | runs | median | min | max | CPU s per wall s |\n"
            << "|---|---|---|---|---|---|---|\n";
  json results = json::array();
  for (auto& s : out) {
    auto r = s.rates();
    auto med = summary::median(r);
    std::cout << "| " << s.name << " | " << s.unit << " | " << r.size() << " | **" << grouped(med)
              << "** | " << grouped(r.front()) << " | " << grouped(r.back()) << " | "
              << std::to_string(s.cpu()).substr(0, 4) << " |\n";
    json events = json::array();
    for (auto& x : s.runs) events.push_back(x.events);
    results.push_back({{"name", s.name},
                       {"unit", s.unit},
                       {"median", med},
                       {"min", r.front()},
                       {"max", r.back()},
                       {"runs", r},
                       {"events_per_run", events},
                       {"cpu_per_wall_median", s.cpu()}});
  }
  json line{{"benchmark", "certfleet-events-bench"},
            {"seconds", opt.seconds},
            {"runs", opt.runs},
            {"batch", opt.batch},
            {"window", opt.window},
            {"publish", opt.publish_batch ? "batch" : "seq"},
            {"replay_events", opt.replay_events},
            {"results", results}};
  std::cout << line.dump() << "\n";
  if (!opt.json_path.empty()) {
    std::ofstream f{opt.json_path};
    f << line.dump() << "\n";
    if (!f) fail("cannot write " + opt.json_path);
  }
  return 0;
}

int usage(const char* self) {
  std::cerr << "usage: " << self
            << " [--seconds N] [--runs N] [--subscribers 1,100] [--batch N] [--window N]\n"
               "       [--replay-events N] [--disk-dir DIR] [--fast-dir DIR] [--json PATH]\n"
               "  --seconds N        producing time of each live and append run (default 5)\n"
               "  --runs N           runs of each measurement (default 5)\n"
               "  --subscribers L    comma-separated subscriber counts (default 1,100)\n"
               "  --batch N          events per append_events call (default 256)\n"
               "  --window N         events in flight beyond the slowest subscriber (default "
               "32768; the subscriber queue holds 65536)\n"
               "  --replay-events N  events stored for the replay measurement (default 1000000; 0 "
               "skips it)\n"
               "  --disk-dir DIR     where the fsynced stores live (default /tmp)\n"
               "  --fast-dir DIR     tmpfs for the fsync-free variants (default /dev/shm; '' "
               "skips them)\n"
               "  --publish batch|seq  tell the bus the stored events (default) or only the last "
               "seq\n"
               "  --json PATH        also write the JSON line to PATH\n";
  return 2;
}

size_t positive(const std::string& flag, const std::string& text) {
  size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(text, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos != text.size() || (v == 0 && flag != "--replay-events"))
    fail(flag + " needs a positive whole number, got '" + text + "'");
  return size_t(v);
}

}  // namespace
}  // namespace certfleet

int main(int argc, char** argv) {
  using namespace certfleet;
  try {
    options opt;
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (i + 1 >= argc) return usage(argv[0]);
      std::string val = argv[++i];
      if (arg == "--seconds") {
        opt.seconds = std::strtod(val.c_str(), nullptr);
        if (!(opt.seconds > 0)) fail("--seconds needs a positive number, got '" + val + "'");
      } else if (arg == "--runs") {
        opt.runs = int(positive(arg, val));
      } else if (arg == "--subscribers") {
        opt.subscribers.clear();
        std::stringstream ss{val};
        for (std::string item; std::getline(ss, item, ',');)
          opt.subscribers.push_back(positive(arg, item));
        if (opt.subscribers.empty()) fail("--subscribers needs a list such as 1,100");
      } else if (arg == "--batch") {
        opt.batch = positive(arg, val);
      } else if (arg == "--window") {
        opt.window = positive(arg, val);
      } else if (arg == "--replay-events") {
        opt.replay_events = positive(arg, val);
      } else if (arg == "--disk-dir") {
        opt.disk_dir = val;
      } else if (arg == "--fast-dir") {
        opt.fast_dir = val;
      } else if (arg == "--json") {
        opt.json_path = val;
      } else if (arg == "--publish" && (val == "batch" || val == "seq")) {
        opt.publish_batch = val == "batch";
      } else {
        return usage(argv[0]);
      }
    }
    if (opt.window + opt.batch > default_subscriber_queue)
      fail("--window plus --batch must stay below the subscriber queue length (" +
           std::to_string(default_subscriber_queue) + ")");
    return run(opt);
  } catch (const std::exception& e) {
    std::cerr << "certfleet-events-bench: " << e.what() << "\n";
    return 1;
  }
}
