// certfleet-bench-seed: writes N trusted servers straight into an initialised state directory, so
// the scale benchmark (benchmarks/scale.py) gets 100,000 registered servers in seconds
// instead of the ~25 minutes the control socket needs at 70 adds per second.
//
// Each record is what the daemon itself stores once a server has registered and been trusted on
// first use (actors/supervisor.cpp validate_new_server, then actors/server_actor.cpp
// on_registered): a random "s-%08x" id, name "host:port", state trusted, presented == pinned (a
// random thumbprint: no real certificate is ever presented, nothing listens), validated_by "tofu",
// no retained credentials. With --events (the default) each record carries the trust history the
// daemon would have written on the way (server_added, credentials_retained, registered, validated,
// credentials_deleted), so the events table has its realistic size too.
//
// Addresses are loopback only, port 9 where nothing listens: server i (from 1) gets
// 127.(9 + i / 65536).(i / 256 % 256).(i % 256), so 100,000 servers span 127.9.0.1 -
// 127.10.134.160. Ids and addresses already in the database are skipped, so seeding twice adds,
// never collides.
//
// Writes are unsynced (state_store::put_server with sync=false) apart from the last one, which is
// synced and so makes every earlier write in the same write-ahead log durable too. The daemon must
// not be running (RocksDB's lock refuses a second opener, and this tool says so).
//
// Output: one JSON object on stdout ({"servers":N,"seconds":...,"per_second":...}); errors on
// stderr with exit code 1.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "actors/events.hpp"
#include "common/address.hpp"
#include "config/state_layout.hpp"
#include "storage/records.hpp"
#include "storage/state_store.hpp"

namespace certfleet {
namespace {

constexpr uint16_t discard_port = 9;
// 127.9.0.0 up to 127.255.255.255: every address stays inside 127.0.0.0/8.
constexpr size_t max_servers = (256 - 9) * 65536 - 1;

std::string loopback_host(size_t i) {
  return "127." + std::to_string(9 + i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
         std::to_string(i % 256);
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct seeder {
  explicit seeder(bool events) : with_events(events) {}

  bool with_events;
  std::mt19937_64 rng{std::random_device{}()};
  std::unordered_set<std::string> ids;
  std::unordered_set<std::string> addresses;

  std::string fresh_id() {
    std::string id;
    do {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "s-%08x", static_cast<unsigned>(rng() & 0xffffffffu));
      id = buf;
    } while (!ids.insert(id).second);
    return id;
  }

  thumbprint random_thumbprint() {
    std::array<uint8_t, thumbprint::size> bytes{};
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    return thumbprint{bytes};
  }

  server_record make_record(const std::string& host, int64_t now) {
    server_record rec;
    rec.id = fresh_id();
    rec.host = host;
    rec.port = discard_port;
    rec.name = format_address(host, discard_port);
    rec.account = "backup-admin";
    rec.state = server_state::trusted;
    auto t = random_thumbprint();
    rec.presented = t;
    rec.pinned = t;
    rec.validated_by = "tofu";
    rec.remote_id = "seeded-" + rec.id;
    rec.created_ms = rec.updated_ms = rec.last_seen_ms = now;
    return rec;
  }

  std::vector<event_record> history(const server_record& rec) const {
    if (!with_events) return {};
    auto t = rec.pinned->to_string();
    return {
        make_event(rec, event_type::server_added, {{"name", rec.name}, {"account", rec.account}}),
        make_event(rec, event_type::credentials_retained, {{"account", rec.account}}),
        make_event(rec, event_type::registered,
                   {{"presented_thumbprint", t}, {"remote_id", rec.remote_id}}),
        make_event(rec, event_type::validated, {{"thumbprint", t}, {"by", rec.validated_by}}),
        make_event(rec, event_type::credentials_deleted, {{"reason", "registered"}}),
    };
  }
};

int run(const std::string& state_dir, size_t count, bool with_events) {
  if (count == 0 || count > max_servers) {
    std::cerr << "certfleet-bench-seed: --count must be between 1 and " << max_servers << "\n";
    return 1;
  }
  state_layout layout{state_dir};
  if (!std::filesystem::exists(layout.master_key_file())) {
    std::cerr << "certfleet-bench-seed: " << state_dir
              << " is not initialised; run 'certfleet --state-dir " << state_dir
              << " init' first\n";
    return 1;
  }
  auto store = state_store::open(layout.db_dir());
  if (!store) {
    std::cerr << "certfleet-bench-seed: " << describe(store.error())
              << " (is certfleetd running on this state directory? stop it first)\n";
    return 1;
  }
  seeder s{with_events};
  if (auto err = (*store)->for_each_server([&](const server_record& r) {
        s.ids.insert(r.id);
        s.addresses.insert(normalised_address(r.host, r.port));
        return true;
      })) {
    std::cerr << "certfleet-bench-seed: " << describe(err) << "\n";
    return 1;
  }
  auto start = std::chrono::steady_clock::now();
  auto now = wall_ms();
  size_t written = 0;
  for (size_t i = 1; written < count; ++i) {
    if (i > max_servers) {
      std::cerr << "certfleet-bench-seed: ran out of loopback addresses after " << written
                << " servers\n";
      return 1;
    }
    auto host = loopback_host(i);
    if (s.addresses.count(normalised_address(host, discard_port)) > 0) continue;
    auto rec = s.make_record(host, now);
    bool last = written + 1 == count;
    auto stored = (*store)->put_server(rec, s.history(rec), last);
    if (!stored) {
      std::cerr << "certfleet-bench-seed: after " << written
                << " servers: " << describe(stored.error()) << "\n";
      return 1;
    }
    ++written;
  }
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json out{{"servers", written},
                     {"total_servers", (*store)->server_count()},
                     {"events", with_events ? written * 5 : 0},
                     {"seconds", seconds},
                     {"per_second", seconds > 0 ? static_cast<double>(written) / seconds : 0.0}};
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace
}  // namespace certfleet

int main(int argc, char** argv) {
  CLI::App app{
      "certfleet-bench-seed: write N trusted servers (loopback addresses, port 9, random pinned "
      "thumbprints) straight into an initialised, stopped certfleet state directory.",
      "certfleet-bench-seed"};
  std::string state_dir;
  size_t count = 100000;
  bool with_events = true;
  app.add_option("-s,--state-dir", state_dir, "State directory made by 'certfleet init'")
      ->required();
  app.add_option("-n,--count", count, "Servers to add")->capture_default_str();
  app.add_flag("--events,!--no-events", with_events,
               "Also write the trust history events the daemon would have written (5 per server)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return certfleet::run(state_dir, count, with_events);
}
