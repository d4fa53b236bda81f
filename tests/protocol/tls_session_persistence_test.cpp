// The manager's TLS session cache kept across a restart: sessions saved to a sealed file and loaded
// into a fresh cache resume against an agent that kept running (its ticket key stayed in memory).
// Both TLS ends run in memory as in tls_session_test.cpp; the files are real, in a temp dir.
//
// Botan is included here, and only here among the tests, to read a session's master secret: the
// point of one test is that those bytes never reach the file.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <botan/tls_session_manager.h>
#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "crypto/sealing.hpp"
#include "protocol/tls_session.hpp"
#include "tests/crypto/test_support.hpp"

namespace certfleet {
namespace {

using namespace std::chrono_literals;
using certfleet::testing::mode_of;
using certfleet::testing::temp_dir;

const std::string server_host = "backup-07.example.net";

identity make_identity(const std::string& cn) {
  auto id = identity::generate({cn, "Acme Backup Ltd"}, std::chrono::hours{24 * 90}, cn,
                               std::chrono::system_clock::now());
  EXPECT_TRUE(id) << describe(id.error());
  return std::move(*id);
}

pin_check accept_only(const thumbprint& expected) {
  return [expected](const thumbprint& presented) -> caf::error {
    if (presented == expected) return {};
    return make_error(ec::permission_denied, "presented " + presented.to_string());
  };
}

struct endpoint {
  std::vector<uint8_t> outbox;
  tls_outputs outputs() {
    tls_outputs o;
    o.ciphertext = [this](const uint8_t* d, size_t n) { outbox.insert(outbox.end(), d, d + n); };
    o.message = [](wire::message&&) {};
    return o;
  }
};

master_key make_key(const std::filesystem::path& file) {
  auto k = master_key::create(file);
  EXPECT_TRUE(k) << describe(k.error());
  return std::move(*k);
}

std::vector<uint8_t> file_bytes(const std::filesystem::path& p) {
  auto b = read_file(p);
  EXPECT_TRUE(b) << describe(b.error());
  return b ? *b : std::vector<uint8_t>{};
}

void write_bytes(const std::filesystem::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

// One manager identity, one agent that keeps running (its session cache and ticket key persist),
// and any number of manager-side caches standing for daemon runs.
class session_persistence : public ::testing::Test {
 protected:
  // Connects the manager through `cache` to the agent at server_host:`port`; returns whether the
  // handshake completed and whether it resumed.
  struct outcome {
    bool active = false;
    bool resumed = false;
    std::string error;
  };
  outcome connect(const std::shared_ptr<tls_session_cache>& cache, uint16_t port = 9401) {
    endpoint c, s;
    tls_client_session client{
        manager_id_, accept_only(server_id_.sha256()), cache, server_host, port, c.outputs()};
    tls_server_session server{server_id_, accept_only(manager_id_.sha256()), agent_cache_,
                              s.outputs()};
    for (int round = 0; round < 32 && (!c.outbox.empty() || !s.outbox.empty()); ++round) {
      auto to_server = std::move(c.outbox);
      c.outbox.clear();
      if (!to_server.empty()) server.received(to_server.data(), to_server.size());
      auto to_client = std::move(s.outbox);
      s.outbox.clear();
      if (!to_client.empty()) client.received(to_client.data(), to_client.size());
    }
    outcome o;
    o.active = client.is_active() && server.is_active();
    o.resumed = client.handshake() && client.handshake()->resumed;
    if (client.failure()) o.error = describe(client.failure());
    client.close();
    return o;
  }

  std::shared_ptr<tls_session_cache> fresh_cache(size_t max_sessions = 1000) {
    return std::make_shared<tls_session_cache>(max_sessions, 24h, [this] { return now_; });
  }

  // The cache's record of the session with server_host:`port`, master secret included.
  Botan::TLS::Session session_of(tls_session_cache& cache, uint16_t port = 9401) {
    Botan::TLS::Session s;
    EXPECT_TRUE(cache.manager().load_from_server_info(
        Botan::TLS::Server_Information(server_host, port), s));
    return s;
  }

  void expect_unusable(const caf::expected<size_t>& loaded, ec code,
                       const tls_session_cache& cache) {
    ASSERT_FALSE(loaded) << "loaded " << *loaded << " sessions";
    EXPECT_EQ(code_of(loaded.error()), code) << describe(loaded.error());
    EXPECT_NE(describe(loaded.error()).find(file_.string()), std::string::npos)
        << describe(loaded.error());
    EXPECT_EQ(cache.size(), 0u);
  }

  temp_dir tmp_;
  std::filesystem::path file_ = tmp_.path() / "tls-sessions";
  master_key key_ = make_key(tmp_.path() / "master.key");
  identity manager_id_ = make_identity("manager-eu-1");
  identity server_id_ = make_identity(server_host);
  std::shared_ptr<tls_session_cache> agent_cache_ = std::make_shared<tls_session_cache>(16);
  std::chrono::system_clock::time_point now_ = std::chrono::system_clock::now();
};

TEST_F(session_persistence, a_saved_session_loaded_into_a_fresh_cache_resumes) {
  auto first_run = fresh_cache();
  auto full = connect(first_run);
  ASSERT_TRUE(full.active) << full.error;
  ASSERT_FALSE(full.resumed);
  ASSERT_FALSE(first_run->save(file_, key_));

  auto second_run = fresh_cache();
  auto loaded = second_run->load(file_, key_);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(*loaded, 1u);
  auto again = connect(second_run);
  EXPECT_TRUE(again.active) << again.error;
  EXPECT_TRUE(again.resumed);
}

TEST_F(session_persistence, a_session_file_already_in_memory_loads_as_the_file_does) {
  auto first_run = fresh_cache();
  ASSERT_TRUE(connect(first_run).active);
  ASSERT_FALSE(first_run->save(file_, key_));
  auto bytes = file_bytes(file_);

  auto truncated = fresh_cache();
  expect_unusable(truncated->load_bytes(bytes.data(), bytes.size() - 1, file_, key_),
                  ec::corrupt_data, *truncated);
  auto second_run = fresh_cache();
  auto loaded = second_run->load_bytes(bytes.data(), bytes.size(), file_, key_);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(*loaded, 1u);
  EXPECT_TRUE(connect(second_run).resumed);
}

TEST_F(session_persistence, without_the_file_a_restarted_manager_does_a_full_handshake) {
  ASSERT_TRUE(connect(fresh_cache()).active);
  auto second_run = fresh_cache();
  auto loaded = second_run->load(file_, key_);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(*loaded, 0u);
  auto again = connect(second_run);
  EXPECT_TRUE(again.active) << again.error;
  EXPECT_FALSE(again.resumed);
}

TEST_F(session_persistence, the_file_is_private_and_holds_no_part_of_the_master_secret) {
  auto cache = fresh_cache();
  ASSERT_TRUE(connect(cache).active);
  auto secret = session_of(*cache).master_secret();
  ASSERT_EQ(secret.size(), 48u);
  ASSERT_FALSE(cache->save(file_, key_));

  EXPECT_EQ(mode_of(file_), 0600u);
  auto bytes = file_bytes(file_);
  ASSERT_FALSE(bytes.empty());
  // Any 12-byte run of the secret, anywhere in the file; a chance match is about 2^-96 per offset.
  const size_t run = 12;
  for (size_t i = 0; i + run <= secret.size(); ++i) {
    auto found =
        std::search(bytes.begin(), bytes.end(), secret.begin() + i, secret.begin() + i + run);
    EXPECT_EQ(found, bytes.end()) << "master secret bytes " << i << ".." << i + run
                                  << " are in the file";
  }
}

TEST_F(session_persistence, a_truncated_file_loads_nothing_and_names_the_file) {
  auto cache = fresh_cache();
  ASSERT_TRUE(connect(cache).active);
  ASSERT_TRUE(connect(cache, 9402).active);
  ASSERT_FALSE(cache->save(file_, key_));
  auto bytes = file_bytes(file_);
  for (size_t keep : {bytes.size() - 1, bytes.size() / 2, size_t{7}, size_t{2}}) {
    write_bytes(file_, std::vector<uint8_t>(bytes.begin(), bytes.begin() + keep));
    auto fresh = fresh_cache();
    SCOPED_TRACE("kept " + std::to_string(keep) + " of " + std::to_string(bytes.size()));
    expect_unusable(fresh->load(file_, key_), ec::corrupt_data, *fresh);
  }
  write_bytes(file_, std::vector<uint8_t>{});
  auto fresh = fresh_cache();
  expect_unusable(fresh->load(file_, key_), ec::corrupt_data, *fresh);
  EXPECT_FALSE(connect(fresh).resumed);
}

TEST_F(session_persistence, a_file_sealed_under_another_master_key_loads_nothing) {
  auto cache = fresh_cache();
  ASSERT_TRUE(connect(cache).active);
  ASSERT_FALSE(cache->save(file_, key_));
  auto other_key = make_key(tmp_.path() / "other.key");

  auto fresh = fresh_cache();
  auto loaded = fresh->load(file_, other_key);
  expect_unusable(loaded, ec::tampered, *fresh);
  EXPECT_NE(describe(loaded.error()).find("master key"), std::string::npos)
      << describe(loaded.error());
  EXPECT_FALSE(connect(fresh).resumed);
}

TEST_F(session_persistence, a_garbage_file_loads_nothing_and_says_what_it_is_not) {
  std::vector<uint8_t> garbage(4096);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 131 + 7);
  write_bytes(file_, garbage);
  auto fresh = fresh_cache();
  auto loaded = fresh->load(file_, key_);
  expect_unusable(loaded, ec::corrupt_data, *fresh);
  EXPECT_NE(describe(loaded.error()).find("not a certfleet TLS session file"), std::string::npos)
      << describe(loaded.error());
}

TEST_F(session_persistence, a_session_moved_to_another_servers_record_fails_to_open) {
  auto cache = fresh_cache();
  ASSERT_TRUE(connect(cache).active);
  ASSERT_FALSE(cache->save(file_, key_));
  auto bytes = file_bytes(file_);
  // The record id "tls-session:backup-07.example.net:9401" is stored in clear; rename the port.
  std::string id = "tls-session:" + server_host + ":9401";
  auto at = std::search(bytes.begin(), bytes.end(), id.begin(), id.end());
  ASSERT_NE(at, bytes.end());
  *(at + static_cast<std::ptrdiff_t>(id.size()) - 1) = '2';
  write_bytes(file_, bytes);

  auto fresh = fresh_cache();
  expect_unusable(fresh->load(file_, key_), ec::tampered, *fresh);
}

TEST_F(session_persistence, a_restored_session_saved_again_before_any_use_still_resumes) {
  auto cache = fresh_cache();
  ASSERT_TRUE(connect(cache).active);
  ASSERT_FALSE(cache->save(file_, key_));
  // A daemon that starts and stops again before reaching the server saves what it restored.
  auto second_run = fresh_cache();
  ASSERT_TRUE(second_run->load(file_, key_));
  ASSERT_FALSE(second_run->save(file_, key_));
  auto third_run = fresh_cache();
  auto loaded = third_run->load(file_, key_);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(*loaded, 1u);
  EXPECT_TRUE(connect(third_run).resumed);
  // The start time travels with it: 25 hours after the first handshake it has expired.
  now_ += 25h;
  auto late = fresh_cache();
  auto none = late->load(file_, key_);
  ASSERT_TRUE(none) << describe(none.error());
  EXPECT_EQ(*none, 0u);
}

TEST_F(session_persistence, sessions_expired_by_load_time_are_not_loaded) {
  auto cache = fresh_cache();
  ASSERT_TRUE(connect(cache).active);
  ASSERT_FALSE(cache->save(file_, key_));

  now_ += 25h;
  auto fresh = fresh_cache();
  auto loaded = fresh->load(file_, key_);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(*loaded, 0u);
  EXPECT_EQ(fresh->size(), 0u);
}

TEST_F(session_persistence, sessions_expired_by_save_time_are_not_saved) {
  auto cache = fresh_cache();
  ASSERT_TRUE(connect(cache).active);
  auto started = now_;
  now_ += 25h;
  ASSERT_FALSE(cache->save(file_, key_));

  now_ = started;  // the file alone decides: the session would still be young here
  auto fresh = fresh_cache();
  auto loaded = fresh->load(file_, key_);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(*loaded, 0u);
  EXPECT_FALSE(connect(fresh).resumed);
}

TEST_F(session_persistence, an_expired_session_is_not_resumed) {
  auto cache = fresh_cache();
  ASSERT_TRUE(connect(cache).active);
  now_ += 25h;
  auto again = connect(cache);
  EXPECT_TRUE(again.active) << again.error;
  EXPECT_FALSE(again.resumed);
}

TEST_F(session_persistence, at_max_sessions_the_least_recently_used_server_is_evicted) {
  auto cache = fresh_cache(2);
  ASSERT_TRUE(connect(cache, 9401).active);
  ASSERT_TRUE(connect(cache, 9402).active);
  ASSERT_TRUE(connect(cache, 9401).resumed);  // 9402 is now the least recently used
  ASSERT_TRUE(connect(cache, 9403).active);
  EXPECT_EQ(cache->size(), 2u);

  EXPECT_TRUE(connect(cache, 9403).resumed);
  EXPECT_TRUE(connect(cache, 9401).resumed);
  EXPECT_FALSE(connect(cache, 9402).resumed);
}

TEST_F(session_persistence, a_smaller_cache_keeps_the_most_recently_used_sessions_of_the_file) {
  auto cache = fresh_cache();
  for (uint16_t port : {9401, 9402, 9403}) ASSERT_TRUE(connect(cache, port).active);
  ASSERT_TRUE(connect(cache, 9401).resumed);  // order, oldest first: 9402, 9403, 9401
  ASSERT_FALSE(cache->save(file_, key_));

  auto small = fresh_cache(2);
  ASSERT_TRUE(small->load(file_, key_));
  EXPECT_EQ(small->size(), 2u);
  EXPECT_TRUE(connect(small, 9401).resumed);
  EXPECT_TRUE(connect(small, 9403).resumed);
  EXPECT_FALSE(connect(small, 9402).resumed);
}

TEST_F(session_persistence, saving_an_empty_cache_replaces_an_older_file) {
  auto cache = fresh_cache();
  ASSERT_TRUE(connect(cache).active);
  ASSERT_FALSE(cache->save(file_, key_));
  ASSERT_FALSE(fresh_cache()->save(file_, key_));
  auto fresh = fresh_cache();
  auto loaded = fresh->load(file_, key_);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(*loaded, 0u);
}

// Many connections look sessions up while others save new ones: the store stays consistent and
// bounded. (The sanitizer build runs this too.)
TEST_F(session_persistence, concurrent_lookups_and_saves_keep_the_cache_bounded_and_consistent) {
  auto cache = fresh_cache(64);
  ASSERT_TRUE(connect(cache).active);
  auto real = session_of(*cache);
  auto& store = cache->manager();
  auto session_for = [&](uint16_t port) {
    std::vector<uint8_t> id(32, 0);
    id[0] = static_cast<uint8_t>(port >> 8);
    id[1] = static_cast<uint8_t>(port);
    return Botan::TLS::Session(
        id, real.master_secret(), real.version(), real.ciphersuite_code(), Botan::TLS::CLIENT,
        real.supports_extended_master_secret(), real.supports_encrypt_then_mac(), real.peer_certs(),
        real.session_ticket(), Botan::TLS::Server_Information(server_host, port), "", 0);
  };
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        auto port = static_cast<uint16_t>(10000 + (i * 7 + t * 13) % 200);
        if (i % 3 == 0) {
          store.save(session_for(port));
        } else {
          Botan::TLS::Session found;
          if (store.load_from_server_info(Botan::TLS::Server_Information(server_host, port),
                                          found) &&
              found.server_info().port() != port)
            ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_LE(cache->size(), 64u);
  EXPECT_GT(cache->size(), 0u);
  ASSERT_FALSE(cache->save(file_, key_));
  auto fresh = fresh_cache(64);
  auto loaded = fresh->load(file_, key_);
  ASSERT_TRUE(loaded) << describe(loaded.error());
  EXPECT_EQ(*loaded, cache->size());
}

}  // namespace
}  // namespace certfleet
