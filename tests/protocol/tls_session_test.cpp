// Both ends of the TLS session wired together in memory: each side's ciphertext is queued and fed
// to the other until neither has anything left to say. No sockets, no threads, no sleeps.
#include "protocol/tls_session.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace certfleet {
namespace {

using namespace std::chrono_literals;

identity make_identity(const std::string& cn,
                       std::chrono::system_clock::time_point now = std::chrono::system_clock::now(),
                       std::chrono::hours validity = std::chrono::hours{24 * 90}) {
  auto id = identity::generate({cn, "Acme Backup Ltd"}, validity, cn, now);
  EXPECT_TRUE(id) << describe(id.error());
  return std::move(*id);
}

// Accepts exactly one thumbprint and counts how often it was asked.
struct pin {
  thumbprint expected;
  int calls = 0;
  pin_check callback() {
    return [this](const thumbprint& presented) -> caf::error {
      ++calls;
      if (presented == expected) return {};
      return make_error(ec::permission_denied, "presented " + presented.to_string() +
                                                   ", expected " + expected.to_string());
    };
  }
};

// What one side's owner observes.
struct endpoint {
  std::vector<uint8_t> outbox;
  std::vector<wire::message> inbox;
  int activations = 0;
  std::optional<caf::error> closed;
  std::vector<caf::error> errors;

  tls_outputs outputs() {
    tls_outputs o;
    o.ciphertext = [this](const uint8_t* d, size_t n) { outbox.insert(outbox.end(), d, d + n); };
    o.message = [this](wire::message&& m) { inbox.push_back(std::move(m)); };
    o.activated = [this] { ++activations; };
    o.closed = [this](const caf::error& e) { closed = e; };
    return o;
  }
};

void deliver(endpoint& from, tls_session& to, endpoint& to_side) {
  if (from.outbox.empty()) return;
  auto bytes = std::move(from.outbox);
  from.outbox.clear();
  if (auto err = to.received(bytes.data(), bytes.size())) to_side.errors.push_back(err);
}

// Moves bytes both ways until both sides are quiet (a handshake needs a handful of flights).
void pump(endpoint& c, tls_session& client, endpoint& s, tls_session& server) {
  for (int round = 0; round < 32 && (!c.outbox.empty() || !s.outbox.empty()); ++round) {
    deliver(c, server, s);
    deliver(s, client, c);
  }
  ASSERT_TRUE(c.outbox.empty() && s.outbox.empty()) << "the sessions never went quiet";
}

class tls_in_memory : public ::testing::Test {
 protected:
  std::unique_ptr<tls_client_session> connect_client(pin& p, uint16_t port = 9401) {
    return std::make_unique<tls_client_session>(manager_id_, p.callback(), manager_cache_,
                                                "backup-07.example.net", port, c_.outputs());
  }
  std::unique_ptr<tls_server_session> accept_server(pin& p) {
    return std::make_unique<tls_server_session>(server_id_, p.callback(), server_cache_,
                                                s_.outputs());
  }
  void reset_endpoints() {
    c_ = endpoint{};
    s_ = endpoint{};
  }

  identity manager_id_ = make_identity("manager-eu-1");
  identity server_id_ = make_identity("backup-07.example.net");
  std::shared_ptr<tls_session_cache> manager_cache_ = std::make_shared<tls_session_cache>(10000);
  std::shared_ptr<tls_session_cache> server_cache_ = std::make_shared<tls_session_cache>(16);
  pin client_pin_{server_id_.sha256()};
  pin server_pin_{manager_id_.sha256()};
  endpoint c_, s_;
};

TEST_F(tls_in_memory, handshake_authenticates_both_sides_and_each_sees_the_others_thumbprint) {
  auto client = connect_client(client_pin_);
  auto server = accept_server(server_pin_);
  pump(c_, *client, s_, *server);

  EXPECT_TRUE(c_.errors.empty()) << describe(c_.errors.front());
  EXPECT_TRUE(s_.errors.empty()) << describe(s_.errors.front());
  ASSERT_TRUE(client->is_active());
  ASSERT_TRUE(server->is_active());
  EXPECT_EQ(c_.activations, 1);
  EXPECT_EQ(s_.activations, 1);
  EXPECT_EQ(client->peer_thumbprint(), server_id_.sha256());
  EXPECT_EQ(server->peer_thumbprint(), manager_id_.sha256());
  EXPECT_EQ(client_pin_.calls, 1);
  EXPECT_EQ(server_pin_.calls, 1);
}

TEST_F(tls_in_memory, messages_round_trip_in_both_directions_once_active) {
  auto client = connect_client(client_pin_);
  auto server = accept_server(server_pin_);
  pump(c_, *client, s_, *server);
  ASSERT_TRUE(client->is_active());

  wire::register_request reg{"svc-certfleet", to_secret("s3cret"), manager_id_.sha256(), "mgr"};
  ASSERT_FALSE(client->send(wire::hello{1, 1, "manager-eu-1"}));
  ASSERT_FALSE(client->send(reg));
  pump(c_, *client, s_, *server);
  ASSERT_EQ(s_.inbox.size(), 2u);
  EXPECT_TRUE((s_.inbox[0] == wire::message{wire::hello{1, 1, "manager-eu-1"}}));
  EXPECT_TRUE(s_.inbox[1] == wire::message{reg});

  wire::registered ok{server_id_.sha256(), "srv-7f3a"};
  ASSERT_FALSE(server->send(ok));
  pump(c_, *client, s_, *server);
  ASSERT_EQ(c_.inbox.size(), 1u);
  EXPECT_TRUE(c_.inbox[0] == wire::message{ok});
}

TEST_F(tls_in_memory, a_message_callback_may_reply_at_once) {
  auto client = connect_client(client_pin_);
  tls_server_session* server_ptr = nullptr;
  auto outputs = s_.outputs();
  outputs.message = [&](wire::message&& m) {
    if (auto* p = std::get_if<wire::ping>(&m)) {
      auto err = server_ptr->send(wire::pong{p->nonce});
      EXPECT_FALSE(err) << describe(err);
    }
  };
  tls_server_session server{server_id_, server_pin_.callback(), server_cache_, outputs};
  server_ptr = &server;
  pump(c_, *client, s_, server);
  ASSERT_FALSE(client->send(wire::ping{42}));
  pump(c_, *client, s_, server);
  ASSERT_EQ(c_.inbox.size(), 1u);
  EXPECT_TRUE(c_.inbox[0] == wire::message{wire::pong{42}});
}

TEST_F(tls_in_memory, the_negotiated_suite_is_ecdhe_ecdsa_with_an_aead_over_x25519) {
  auto client = connect_client(client_pin_);
  auto server = accept_server(server_pin_);
  pump(c_, *client, s_, *server);
  for (tls_session* side :
       {static_cast<tls_session*>(client.get()), static_cast<tls_session*>(server.get())}) {
    auto hs = side->handshake();
    ASSERT_TRUE(hs);
    EXPECT_EQ(hs->version, "TLS v1.2");
    EXPECT_EQ(hs->ciphersuite.rfind("ECDHE_ECDSA_WITH_", 0), 0u) << hs->ciphersuite;
    EXPECT_TRUE(hs->aead) << hs->ciphersuite;
    EXPECT_EQ(hs->group, "x25519");
    EXPECT_FALSE(hs->resumed);
    RecordProperty("ciphersuite", hs->ciphersuite);
  }
}

TEST_F(tls_in_memory, a_pin_mismatch_fails_the_handshake_and_reports_the_presented_thumbprint) {
  pin wrong{make_identity("someone-else").sha256()};
  auto client = connect_client(wrong);
  auto server = accept_server(server_pin_);
  pump(c_, *client, s_, *server);

  ASSERT_FALSE(c_.errors.empty());
  EXPECT_EQ(code_of(c_.errors.front()), ec::tls_failure);
  auto text = describe(c_.errors.front());
  EXPECT_NE(text.find("bad_certificate"), std::string::npos) << text;
  EXPECT_NE(text.find("presented " + server_id_.sha256().to_string()), std::string::npos) << text;
  EXPECT_NE(text.find("expected " + wrong.expected.to_string()), std::string::npos) << text;
  EXPECT_EQ(client->peer_thumbprint(), server_id_.sha256());
  EXPECT_EQ(code_of(client->pin_rejection()), ec::permission_denied);

  EXPECT_FALSE(client->is_active());
  EXPECT_FALSE(server->is_active());
  EXPECT_EQ(c_.activations + s_.activations, 0);
  ASSERT_FALSE(s_.errors.empty());
  EXPECT_EQ(code_of(s_.errors.front()), ec::tls_failure);
  EXPECT_NE(describe(s_.errors.front()).find("bad_certificate"), std::string::npos);
  EXPECT_EQ(code_of(client->send(wire::collect{})), ec::tls_failure);
  EXPECT_TRUE(c_.inbox.empty() && s_.inbox.empty());
}

TEST_F(tls_in_memory, a_server_that_refuses_the_client_certificate_fails_the_handshake) {
  pin refuse_all{make_identity("only-this-manager").sha256()};
  auto client = connect_client(client_pin_);
  auto server = accept_server(refuse_all);
  pump(c_, *client, s_, *server);

  ASSERT_FALSE(s_.errors.empty());
  EXPECT_EQ(code_of(s_.errors.front()), ec::tls_failure);
  EXPECT_EQ(server->peer_thumbprint(), manager_id_.sha256());
  EXPECT_TRUE(server->pin_rejection());
  ASSERT_FALSE(c_.errors.empty());
  EXPECT_NE(describe(c_.errors.front()).find("bad_certificate"), std::string::npos)
      << describe(c_.errors.front());
  EXPECT_FALSE(client->is_active());
  EXPECT_FALSE(server->is_active());
  ASSERT_TRUE(c_.closed);
  EXPECT_EQ(code_of(*c_.closed), ec::tls_failure);
}

TEST_F(tls_in_memory, an_expired_peer_certificate_is_refused_before_the_pin_check) {
  auto long_ago = std::chrono::system_clock::now() - std::chrono::hours{24 * 400};
  server_id_ = make_identity("backup-07.example.net", long_ago, std::chrono::hours{24 * 30});
  client_pin_.expected = server_id_.sha256();
  auto client = connect_client(client_pin_);
  auto server = accept_server(server_pin_);
  pump(c_, *client, s_, *server);

  ASSERT_FALSE(c_.errors.empty());
  EXPECT_NE(describe(c_.errors.front()).find("expired"), std::string::npos)
      << describe(c_.errors.front());
  EXPECT_EQ(client_pin_.calls, 0);
  EXPECT_EQ(client->peer_thumbprint(), server_id_.sha256());
  EXPECT_FALSE(client->is_active());
}

TEST_F(tls_in_memory, a_second_connection_with_the_same_caches_resumes_and_says_so) {
  {
    auto client = connect_client(client_pin_);
    auto server = accept_server(server_pin_);
    pump(c_, *client, s_, *server);
    ASSERT_TRUE(client->is_active());
    client->close();
    pump(c_, *client, s_, *server);
  }
  reset_endpoints();
  auto client = connect_client(client_pin_);
  auto server = accept_server(server_pin_);
  pump(c_, *client, s_, *server);
  ASSERT_TRUE(client->is_active()) << (c_.errors.empty() ? "" : describe(c_.errors.front()));
  ASSERT_TRUE(server->is_active());
  ASSERT_TRUE(client->handshake());
  ASSERT_TRUE(server->handshake());
  EXPECT_TRUE(client->handshake()->resumed);
  EXPECT_TRUE(server->handshake()->resumed);
  EXPECT_EQ(client->peer_thumbprint(), server_id_.sha256());
  EXPECT_EQ(server->peer_thumbprint(), manager_id_.sha256());
  // The pin was checked again on the remembered certificates, once per side per connection.
  EXPECT_EQ(client_pin_.calls, 2);
  EXPECT_EQ(server_pin_.calls, 2);
  ASSERT_FALSE(client->send(wire::collect{}));
  pump(c_, *client, s_, *server);
  EXPECT_EQ(s_.inbox.size(), 1u);
}

TEST_F(tls_in_memory, resumption_is_refused_once_the_pin_no_longer_matches) {
  {
    auto client = connect_client(client_pin_);
    auto server = accept_server(server_pin_);
    pump(c_, *client, s_, *server);
    ASSERT_TRUE(client->is_active());
  }
  reset_endpoints();
  client_pin_.expected = make_identity("replacement").sha256();
  auto client = connect_client(client_pin_);
  auto server = accept_server(server_pin_);
  pump(c_, *client, s_, *server);
  EXPECT_FALSE(client->is_active());
  EXPECT_FALSE(server->is_active());
  ASSERT_FALSE(c_.errors.empty());
  EXPECT_EQ(client->peer_thumbprint(), server_id_.sha256());
  EXPECT_TRUE(client->pin_rejection());
}

TEST_F(tls_in_memory, sessions_are_cached_per_server_address) {
  {
    auto client = connect_client(client_pin_, 9401);
    auto server = accept_server(server_pin_);
    pump(c_, *client, s_, *server);
    ASSERT_TRUE(client->is_active());
  }
  reset_endpoints();
  auto client = connect_client(client_pin_, 9402);
  auto server = accept_server(server_pin_);
  pump(c_, *client, s_, *server);
  ASSERT_TRUE(client->handshake());
  EXPECT_FALSE(client->handshake()->resumed);
}

TEST_F(tls_in_memory, sending_before_the_handshake_completes_is_refused) {
  auto client = connect_client(client_pin_);
  EXPECT_FALSE(client->is_active());
  EXPECT_EQ(code_of(client->send(wire::ping{1})), ec::invalid_state);
}

TEST_F(tls_in_memory, garbage_from_the_peer_is_a_tls_failure_not_an_exception) {
  auto server = accept_server(server_pin_);
  const std::string junk = "GET / HTTP/1.1\r\nHost: backup-07\r\n\r\n";
  auto err = server->received(reinterpret_cast<const uint8_t*>(junk.data()), junk.size());
  EXPECT_EQ(code_of(err), ec::tls_failure) << describe(err);
  EXPECT_TRUE(server->is_closed());
  EXPECT_EQ(code_of(server->received(reinterpret_cast<const uint8_t*>(junk.data()), 1)),
            ec::tls_failure);
}

TEST_F(tls_in_memory, an_orderly_close_is_reported_to_the_peer_without_an_error) {
  auto client = connect_client(client_pin_);
  auto server = accept_server(server_pin_);
  pump(c_, *client, s_, *server);
  ASSERT_TRUE(server->is_active());
  client->close();
  pump(c_, *client, s_, *server);
  ASSERT_TRUE(s_.closed);
  EXPECT_FALSE(*s_.closed);
  EXPECT_TRUE(server->is_closed());
  EXPECT_TRUE(client->is_closed());
  EXPECT_EQ(code_of(client->send(wire::ping{1})), ec::invalid_state);
}

TEST_F(tls_in_memory,
       a_malformed_message_inside_a_healthy_channel_closes_it_with_a_protocol_error) {
  // The public API only sends well-formed frames, so a peer that breaks framing is emulated with
  // mismatched limits: the server accepts frames of at most 8 bytes, the client sends a larger one.
  tls_options small;
  small.max_frame_size = 8;
  auto client = connect_client(client_pin_);
  tls_server_session server{server_id_, server_pin_.callback(), server_cache_, s_.outputs(), small};
  pump(c_, *client, s_, server);
  ASSERT_TRUE(server.is_active());
  ASSERT_FALSE(client->send(wire::hello{1, 1, "a name longer than eight bytes"}));
  pump(c_, *client, s_, server);
  ASSERT_FALSE(s_.errors.empty());
  EXPECT_EQ(code_of(s_.errors.front()), ec::frame_too_large);
  EXPECT_TRUE(s_.inbox.empty());
  EXPECT_TRUE(server.is_closed());
  EXPECT_TRUE(client->is_closed());
}

// Bad-input matrix: certificates exactly at their validity boundaries, with the clock injected.
TEST_F(tls_in_memory, a_peer_certificate_is_valid_from_not_before_to_not_after_inclusive) {
  using std::chrono::seconds;
  struct probe {
    std::chrono::system_clock::time_point at;
    bool accepted;
  };
  const std::vector<probe> probes{{server_id_.not_before() - seconds{1}, false},
                                  {server_id_.not_before(), true},
                                  {server_id_.not_after(), true},
                                  {server_id_.not_after() + seconds{1}, false}};
  for (const auto& p : probes) {
    SCOPED_TRACE(std::chrono::duration_cast<seconds>(p.at.time_since_epoch()).count());
    reset_endpoints();
    tls_options opts;
    opts.clock = [at = p.at] { return at; };
    // A fresh cache each time: a resumed session would skip the certificate check.
    auto client = std::make_unique<tls_client_session>(
        manager_id_, client_pin_.callback(), std::make_shared<tls_session_cache>(4),
        "backup-07.example.net", 9401, c_.outputs(), opts);
    auto server = accept_server(server_pin_);
    pump(c_, *client, s_, *server);
    EXPECT_EQ(client->is_active(), p.accepted)
        << (c_.errors.empty() ? std::string{"no error"} : describe(c_.errors.front()));
  }
}

}  // namespace
}  // namespace certfleet
