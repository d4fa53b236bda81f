// Micro-benchmarks of the pieces a connect storm and the event stream are built from: thumbprints,
// sealing, framing and message codecs, record codecs, the RocksDB state store, and the in-memory
// TLS handshake. Every benchmark reports items_per_second so the numbers compare directly with the
// rates in benchmarks/RESULTS.md.
//
// RocksDB benchmarks open a fresh database in a mkdtemp directory under /tmp (a real ext4 disk
// here, so "sync" means an fsync) and remove it afterwards.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "benchmarks/in_memory_tls.hpp"
#include "benchmarks/temp_dir.hpp"
#include "crypto/identity.hpp"
#include "crypto/sealing.hpp"
#include "crypto/thumbprint.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"
#include "storage/records.hpp"
#include "storage/state_store.hpp"

namespace certfleet {
namespace {

namespace fs = std::filesystem;

using bench::temp_dir;

identity make_identity(const std::string& cn) {
  auto id = identity::generate({cn, "Acme Backup Ltd"}, std::chrono::hours{24 * 90}, cn);
  if (!id) throw std::runtime_error(describe(id.error()));
  return std::move(*id);
}

template <class T>
T must(caf::expected<T> v, benchmark::State& state) {
  if (!v) state.SkipWithError(describe(v.error()).c_str());
  return v ? std::move(*v) : T{};
}

master_key create_key(const temp_dir& dir) {
  auto key = master_key::create(dir.path() / "master.key");
  if (!key) throw std::runtime_error(describe(key.error()));
  return std::move(*key);
}

std::unique_ptr<state_store> open_store(const temp_dir& dir) {
  auto s = state_store::open(dir.path() / "state");
  if (!s) throw std::runtime_error(describe(s.error()));
  return std::move(*s);
}

server_record sample_server(uint64_t n) {
  server_record r;
  r.id = "s-" + std::to_string(100000000 + n);
  r.name = "backup-" + std::to_string(n);
  r.host = "backup-" + std::to_string(n) + ".eu-west.example.net";
  r.port = 9401;
  r.state = server_state::trusted;
  r.account = "svc-certfleet";
  std::array<uint8_t, 32> digest{};
  for (size_t i = 0; i < digest.size(); ++i) digest[i] = static_cast<uint8_t>(n * 31 + i);
  r.expected = thumbprint{digest};
  r.presented = thumbprint{digest};
  r.pinned = thumbprint{digest};
  r.validated_by = "expected";
  r.remote_id = "srv-" + std::to_string(n);
  r.created_ms = 1760000000000;
  r.updated_ms = 1760000000000;
  r.last_seen_ms = 1760000000000;
  r.last_collection_ms = 1760000000000;
  return r;
}

event_record sample_event(uint64_t n) {
  event_record e;
  e.time_ms = 1760000000000;
  e.type = "server_trusted";
  e.server_id = "s-" + std::to_string(100000000 + n);
  e.address = "backup-" + std::to_string(n) + ".eu-west.example.net:9401";
  e.details = R"({"thumbprint":"3F2A9C1B7E4D5A6F8091A2B3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F7",)"
              R"("validated_by":"expected"})";
  return e;
}

wire::inventory sample_inventory(size_t jobs) {
  wire::inventory inv;
  for (size_t i = 0; i < jobs; ++i)
    inv.jobs.push_back({"nightly-vm-" + std::to_string(i), "incremental", "success",
                        1760000000000 + int64_t(i), 1234567890ULL * (i + 1)});
  return inv;
}

// --- crypto ---------------------------------------------------------------------------------

void BM_thumbprint_of_der(benchmark::State& state) {
  auto der = make_identity("backup-07.example.net").certificate_der();
  for (auto _ : state) benchmark::DoNotOptimize(thumbprint::of_der(der));
  state.SetItemsProcessed(state.iterations());
  state.counters["der_bytes"] = double(der.size());
}
BENCHMARK(BM_thumbprint_of_der);

void BM_thumbprint_parse_colon_string(benchmark::State& state) {
  auto text = make_identity("backup-07.example.net").sha256().to_colon_string();
  for (auto _ : state) benchmark::DoNotOptimize(thumbprint::parse(text));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_thumbprint_parse_colon_string);

void BM_seal_password(benchmark::State& state) {
  temp_dir dir;
  auto key = create_key(dir);
  auto password = secret_bytes(32, 0x5a);
  for (auto _ : state) benchmark::DoNotOptimize(seal(key, "s-100000007", password));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_seal_password);

void BM_open_password(benchmark::State& state) {
  temp_dir dir;
  auto key = create_key(dir);
  auto blob = must(seal(key, "s-100000007", secret_bytes(32, 0x5a)), state);
  for (auto _ : state) benchmark::DoNotOptimize(open(key, "s-100000007", blob));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_open_password);

// --- protocol -------------------------------------------------------------------------------

// Encodes the payload into a frame and runs it through a decoder, as the two ends of a channel do.
void frame_round_trip(benchmark::State& state, const secret_bytes& payload) {
  frame_decoder decoder;
  for (auto _ : state) {
    auto frame = encode_frame(payload.data(), payload.size());
    if (!frame || decoder.feed(frame->data(), frame->size())) {
      state.SkipWithError("frame round trip failed");
      break;
    }
    benchmark::DoNotOptimize(decoder.next());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * int64_t(payload.size()));
}

void BM_frame_round_trip_1KiB(benchmark::State& state) {
  frame_round_trip(state, secret_bytes(1024, 0xab));
}
BENCHMARK(BM_frame_round_trip_1KiB);

// Message encode + frame + decode frame + message decode: what one message costs besides TLS.
void message_round_trip(benchmark::State& state, const wire::message& msg) {
  frame_decoder decoder;
  size_t payload_size = 0;
  for (auto _ : state) {
    auto payload = wire::encode(msg);
    if (!payload) {
      state.SkipWithError(describe(payload.error()).c_str());
      break;
    }
    payload_size = payload->size();
    auto frame = encode_frame(payload->data(), payload->size());
    if (!frame || decoder.feed(frame->data(), frame->size())) {
      state.SkipWithError("framing failed");
      break;
    }
    auto got = decoder.next();
    benchmark::DoNotOptimize(wire::decode(got->data(), got->size()));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["payload_bytes"] = double(payload_size);
}

void BM_message_round_trip_register_request(benchmark::State& state) {
  auto manager = make_identity("manager-eu-1");
  message_round_trip(state, wire::register_request{"svc-certfleet", to_secret("correct horse 42"),
                                                   manager.sha256(), "manager-eu-1"});
}
BENCHMARK(BM_message_round_trip_register_request);

void BM_message_round_trip_inventory_50_jobs(benchmark::State& state) {
  message_round_trip(state, sample_inventory(50));
}
BENCHMARK(BM_message_round_trip_inventory_50_jobs);

// --- records --------------------------------------------------------------------------------

void BM_server_record_encode(benchmark::State& state) {
  auto r = sample_server(7);
  for (auto _ : state) benchmark::DoNotOptimize(encode(r));
  state.SetItemsProcessed(state.iterations());
  state.counters["record_bytes"] = double(encode(r).size());
}
BENCHMARK(BM_server_record_encode);

void BM_server_record_decode(benchmark::State& state) {
  auto bytes = encode(sample_server(7));
  for (auto _ : state) benchmark::DoNotOptimize(decode_server_record(bytes));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_server_record_decode);

void BM_event_record_encode(benchmark::State& state) {
  auto e = sample_event(7);
  for (auto _ : state) benchmark::DoNotOptimize(encode(e));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_event_record_encode);

void BM_event_record_decode(benchmark::State& state) {
  auto bytes = encode(sample_event(7));
  for (auto _ : state) benchmark::DoNotOptimize(decode_event_record(bytes));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_event_record_decode);

// --- state store ----------------------------------------------------------------------------

// Cycles over 100,000 ids so the database grows to fleet size and then overwrites, as status
// updates of a large fleet do.
void put_server(benchmark::State& state, bool sync) {
  temp_dir dir;
  auto store = open_store(dir);
  uint64_t n = 0;
  for (auto _ : state) {
    auto r = store->put_server(sample_server(n++ % 100000), {}, sync);
    if (!r) {
      state.SkipWithError(describe(r.error()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_state_store_put_server_no_sync(benchmark::State& state) {
  put_server(state, false);
}
BENCHMARK(BM_state_store_put_server_no_sync)->UseRealTime();

void BM_state_store_put_server_sync(benchmark::State& state) {
  put_server(state, true);
}
BENCHMARK(BM_state_store_put_server_sync)->UseRealTime();

void BM_state_store_get_server(benchmark::State& state) {
  constexpr uint64_t servers = 10000;
  temp_dir dir;
  auto store = open_store(dir);
  for (uint64_t i = 0; i < servers; ++i)
    must(store->put_server(sample_server(i), {}, false), state);
  std::mt19937_64 rng(42);
  std::vector<std::string> ids;
  for (int i = 0; i < 4096; ++i) ids.push_back(sample_server(rng() % servers).id);
  size_t i = 0;
  for (auto _ : state) {
    auto r = store->get_server(ids[i++ % ids.size()]);
    if (!r || !*r) {
      state.SkipWithError("a stored server was not found");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_state_store_get_server)->UseRealTime();

// Every event is fsynced before append_events returns, so the batch size decides the rate.
void BM_state_store_append_events(benchmark::State& state) {
  const auto per_call = static_cast<size_t>(state.range(0));
  temp_dir dir;
  auto store = open_store(dir);
  std::vector<event_record> batch;
  for (size_t i = 0; i < per_call; ++i) batch.push_back(sample_event(i));
  for (auto _ : state) {
    auto r = store->append_events(batch);
    if (!r) {
      state.SkipWithError(describe(r.error()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * int64_t(per_call));
}
BENCHMARK(BM_state_store_append_events)->Arg(1)->Arg(64)->UseRealTime();

void BM_state_store_read_events_page_of_1000(benchmark::State& state) {
  constexpr size_t events = 20000;
  constexpr size_t page = 1000;
  temp_dir dir;
  auto store = open_store(dir);
  std::vector<event_record> batch;
  for (size_t i = 0; i < 1000; ++i) batch.push_back(sample_event(i));
  for (size_t i = 0; i < events / 1000; ++i) must(store->append_events(batch), state);
  uint64_t since = 0;
  for (auto _ : state) {
    auto r = store->read_events(since, page);
    if (!r || r->size() != page) {
      state.SkipWithError("a page of events came back short");
      break;
    }
    since = (since + page) % (events - page);
  }
  state.SetItemsProcessed(state.iterations() * int64_t(page));
}
BENCHMARK(BM_state_store_read_events_page_of_1000)->UseRealTime();

// --- TLS ------------------------------------------------------------------------------------

// Both ends on this thread, so items_per_second is the single-core handshake limit (the
// certfleet-handshake-limit program measures the same loop over a fixed time).
void tls_handshake(benchmark::State& state, bool resume) {
  auto loop = bench::in_memory_handshake_loop::create(resume);
  if (!loop) {
    state.SkipWithError(describe(loop.error()).c_str());
    return;
  }
  for (int i = 0; i < 3; ++i) must((*loop)->run_once(), state);
  int64_t resumed = 0;
  for (auto _ : state) {
    auto r = (*loop)->run_once();
    if (!r) {
      state.SkipWithError(describe(r.error()).c_str());
      break;
    }
    resumed += r->resumed ? 1 : 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["resumed_fraction"] =
      state.iterations() ? double(resumed) / double(state.iterations()) : 0.0;
}

void BM_tls_full_handshake_in_memory(benchmark::State& state) {
  tls_handshake(state, false);
}
BENCHMARK(BM_tls_full_handshake_in_memory)->Unit(benchmark::kMillisecond);

void BM_tls_resumed_handshake_in_memory(benchmark::State& state) {
  tls_handshake(state, true);
}
BENCHMARK(BM_tls_resumed_handshake_in_memory)->Unit(benchmark::kMicrosecond);

// A daemon start after an orderly stop: unseal and decode the saved client sessions (here 1,000
// of them, one per server) into a fresh cache. The resumed storm cannot start before this ends.
void BM_tls_session_cache_load_1000(benchmark::State& state) {
  constexpr int sessions = 1000;
  temp_dir dir;
  auto key = create_key(dir);
  auto file = dir.path() / "tls-sessions";
  auto loop = bench::in_memory_handshake_loop::create(false);
  if (!loop) {
    state.SkipWithError(describe(loop.error()).c_str());
    return;
  }
  for (int i = 0; i < sessions; ++i) must((*loop)->run_once(), state);
  if (auto err = (*loop)->client_cache()->save(file, key)) {
    state.SkipWithError(describe(err).c_str());
    return;
  }
  for (auto _ : state) {
    tls_session_cache cache{10000};
    auto n = cache.load(file, key);
    if (!n || *n != size_t{sessions}) {
      state.SkipWithError(n ? "not every session loaded" : describe(n.error()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * sessions);
}
BENCHMARK(BM_tls_session_cache_load_1000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace certfleet

BENCHMARK_MAIN();
