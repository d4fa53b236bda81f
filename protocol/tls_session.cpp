#include "protocol/tls_session.hpp"

#include <deque>
#include <exception>
#include <utility>

#include <botan/ber_dec.h>
#include <botan/credentials_manager.h>
#include <botan/oids.h>
#include <botan/system_rng.h>
#include <botan/tls_callbacks.h>
#include <botan/tls_client.h>
#include <botan/tls_exceptn.h>
#include <botan/tls_messages.h>
#include <botan/tls_server.h>
#include <botan/tls_session_manager.h>
#include <botan/x509cert.h>

#include "common/address.hpp"
#include "crypto/botan_identity.hpp"
#include "protocol/tls_policy.hpp"

namespace certfleet {

namespace {

// What Botan reserves up front for a channel's read and write buffers (its default is 10 KiB each,
// kept for the connection's life). The protocol's records are small, and the buffers grow
// when a larger one comes, so a connection holds what it has needed rather than the default.
constexpr size_t reserved_tls_buffer = 1024;

// Hands Botan this endpoint's identity for both roles, trusts no CA (pinning replaces PKIX) and
// gives a TLS server the shared ticket key so that any connection can resume any other's session.
class credentials final : public Botan::Credentials_Manager {
 public:
  credentials(identity local, std::shared_ptr<tls_session_cache> cache)
      : local_(std::move(local)), cache_(std::move(cache)) {}

  std::vector<Botan::Certificate_Store*> trusted_certificate_authorities(
      const std::string&, const std::string&) override {
    return {};
  }

  std::vector<Botan::X509_Certificate> find_cert_chain(
      const std::vector<std::string>& cert_key_types, const std::vector<Botan::X509_DN>&,
      const std::string&, const std::string&) override {
    bool wants_ecdsa = cert_key_types.empty();
    for (const auto& t : cert_key_types) wants_ecdsa = wants_ecdsa || t == "ECDSA";
    if (!wants_ecdsa) return {};
    return {local_.internals().certificate};
  }

  Botan::Private_Key* private_key_for(const Botan::X509_Certificate&, const std::string&,
                                      const std::string&) override {
    return local_.internals().key.get();
  }

  Botan::SymmetricKey psk(const std::string& type, const std::string& context,
                          const std::string& identity) override {
    if (type == "tls-server" && context == "session-ticket")
      return Botan::SymmetricKey(cache_->ticket_key().data(), cache_->ticket_key().size());
    return Credentials_Manager::psk(type, context, identity);
  }

 private:
  identity local_;
  std::shared_ptr<tls_session_cache> cache_;
};

std::string group_name(uint16_t id) {
  switch (static_cast<Botan::TLS::Group_Params>(id)) {
    case Botan::TLS::Group_Params::X25519:
      return "x25519";
    case Botan::TLS::Group_Params::SECP256R1:
      return "secp256r1";
    default:
      return "group " + std::to_string(id);
  }
}

// The ECDSA P-256 curve and the EC public key algorithm, by OID, so that no name lookup or string
// comparison can be fooled.
const Botan::OID& p256_oid() {
  static const Botan::OID oid{1, 2, 840, 10045, 3, 1, 7};
  return oid;
}

const Botan::OID& ec_public_key_oid() {
  static const Botan::OID oid{1, 2, 840, 10045, 2, 1};
  return oid;
}

// "ECDSA secp384r1", "RSA", ...: for the sentence that refuses a key of the wrong type.
std::string key_description(const Botan::AlgorithmIdentifier& algo) {
  std::string name = Botan::OIDS::oid2str_or_empty(algo.get_oid());
  if (name.empty()) name = algo.get_oid().to_string();
  if (algo.get_oid() == ec_public_key_oid()) {
    try {
      Botan::OID curve;
      Botan::BER_Decoder(algo.get_parameters()).decode(curve);
      auto curve_name = Botan::OIDS::oid2str_or_empty(curve);
      return "ECDSA " + (curve_name.empty() ? curve.to_string() : curve_name);
    } catch (const std::exception&) {
      return "ECDSA (explicit curve parameters)";
    }
  }
  return name;
}

}  // namespace

// --- the channel owner --------------------------------------------------------------------------

struct tls_session::impl final : Botan::TLS::Callbacks {
  impl(identity local, pin_check check, std::shared_ptr<tls_session_cache> shared_cache,
       tls_outputs outputs, tls_options options, std::string peer)
      : cache(shared_cache),
        creds(std::move(local), std::move(shared_cache)),
        check(std::move(check)),
        out(std::move(outputs)),
        opts(std::move(options)),
        decoder(opts.max_frame_size),
        peer_label(std::move(peer)) {}

  // Botan callbacks: they only record or queue; the owner's callbacks run after Botan returns.

  void tls_emit_data(const uint8_t data[], size_t size) override { out.ciphertext(data, size); }

  void tls_record_received(uint64_t, const uint8_t data[], size_t size) override {
    plaintext.insert(plaintext.end(), data, data + size);
  }

  void tls_alert(Botan::TLS::Alert alert) override {
    if (alert.type() == Botan::TLS::Alert::CLOSE_NOTIFY) {
      peer_closed = true;
    } else if (alert.is_fatal()) {
      fail(make_error(ec::tls_failure, peer_label + " aborted the TLS session with alert '" +
                                           alert.type_string() + "'"));
    }
  }

  bool tls_session_established(const Botan::TLS::Session& session) override {
    // A resumed handshake carries no certificate and skips tls_verify_cert_chain; check the
    // remembered one so that a peer whose pin was withdrawn cannot come back through resumption.
    bool resumed = !certificate_verified;
    if (resumed) verify_peer(session.peer_certs(), true);
    tls_handshake_info hs;
    hs.version = session.version().to_string();
    hs.ciphersuite = session.ciphersuite().to_string();
    hs.aead = session.ciphersuite().mac_algo() == "AEAD";
    hs.group = resumed ? std::string{} : group;
    hs.resumed = resumed;
    info = std::move(hs);
    return true;
  }

  void tls_session_activated() override { activation_pending = true; }

  void tls_verify_cert_chain(const std::vector<Botan::X509_Certificate>& chain,
                             const std::vector<std::shared_ptr<const Botan::OCSP::Response>>&,
                             const std::vector<Botan::Certificate_Store*>&, Botan::Usage_Type,
                             const std::string&, const Botan::TLS::Policy&) override {
    verify_peer(chain);
    certificate_verified = true;
  }

  void tls_inspect_handshake_msg(const Botan::TLS::Handshake_Message& msg) override {
    if (msg.type() != Botan::TLS::SERVER_KEX) return;
    // ECDHE parameters: curve_type (3 = named_curve), then the 16-bit group id.
    const auto& params = dynamic_cast<const Botan::TLS::Server_Key_Exchange&>(msg).params();
    if (params.size() >= 3 && params[0] == 3) group = group_name((params[1] << 8) | params[2]);
  }

  [[noreturn]] void reject(Botan::TLS::Alert::Type alert, const std::string& why) {
    throw Botan::TLS::TLS_Exception(alert, why);
  }

  /// Checks the peer's leaf certificate (docs/protocol.md, "Certificate verification"): validity,
  /// then the owner's pin check, then the key type (ECDSA P-256), then, only for a peer the owner
  /// accepted without a pin, the self-signature. `resumed`: the certificate comes from a session
  /// this side established after a full check, so key type and signature are not checked again;
  /// validity and the pin are, because both can change.
  void verify_peer(const std::vector<Botan::X509_Certificate>& chain, bool resumed = false) {
    if (chain.empty())
      reject(Botan::TLS::Alert::BAD_CERTIFICATE, peer_label + " presented no certificate");
    const auto& leaf = chain.front();
    presented_der = leaf.BER_encode();
    auto presented_now = thumbprint::of_der(presented_der);
    presented = presented_now;
    auto named = peer_label + "'s certificate " + presented_now.to_string();

    auto now = opts.clock();
    validity = certificate_validity{leaf.not_before().to_std_timepoint(),
                                    leaf.not_after().to_std_timepoint()};
    if (now < validity->not_before - opts.validity_tolerance)
      reject(Botan::TLS::Alert::BAD_CERTIFICATE, named + " is not valid before " +
                                                     leaf.not_before().readable_string() +
                                                     "; check the clocks of both machines");
    if (now > validity->not_after + opts.validity_tolerance)
      reject(Botan::TLS::Alert::CERTIFICATE_EXPIRED, named + " expired at " +
                                                         leaf.not_after().readable_string() +
                                                         "; the peer must renew its certificate");

    auto verdict = check(presented_now);
    if (!verdict) {
      rejection = verdict.error();
      reject(Botan::TLS::Alert::BAD_CERTIFICATE,
             named + " was refused: " + describe(verdict.error()));
    }
    trust = *verdict;
    if (resumed) return;
    check_key_type(leaf, named);
    if (*verdict == peer_trust::unpinned) check_self_signature(leaf, named);
  }

  // Reads the key type from the certificate's SubjectPublicKeyInfo algorithm identifier
  // (id-ecPublicKey with the named curve P-256) without decoding the public point.
  void check_key_type(const Botan::X509_Certificate& leaf, const std::string& named) {
    const auto& algo = leaf.subject_public_key_algo();
    bool p256 = false;
    if (algo.get_oid() == ec_public_key_oid()) {
      try {
        Botan::OID curve;
        Botan::BER_Decoder(algo.get_parameters()).decode(curve).verify_end();
        p256 = curve == p256_oid();
      } catch (const std::exception&) {
        p256 = false;  // explicit curve parameters or garbage: not the named curve P-256
      }
    }
    if (!p256)
      reject(Botan::TLS::Alert::BAD_CERTIFICATE,
             named + " has a " + key_description(algo) + " key; certfleet requires ECDSA P-256");
  }

  void check_self_signature(const Botan::X509_Certificate& leaf, const std::string& named) {
    std::unique_ptr<Botan::Public_Key> key(leaf.subject_public_key());
    if (!leaf.check_signature(*key))
      reject(Botan::TLS::Alert::BAD_CERTIFICATE,
             named + " is not validly self-signed by its own key");
  }

  void fail(caf::error err) {
    if (!failure) failure = std::move(err);
  }

  // Runs a Botan call, translating its exceptions; the first failure is kept.
  template <class F>
  void guarded(const char* what, F&& f) {
    ++botan_depth;
    try {
      f();
    } catch (const Botan::TLS::TLS_Exception& e) {
      fail(make_error(ec::tls_failure,
                      std::string{"TLS "} + what + " with " + peer_label + " failed (alert '" +
                          Botan::TLS::Alert(e.type()).type_string() + "'): " + e.what()));
    } catch (const std::exception& e) {
      fail(make_error(ec::tls_failure,
                      std::string{"TLS "} + what + " with " + peer_label + " failed: " + e.what()));
    }
    --botan_depth;
  }

  // Everything that must not happen inside a Botan callback: owner notifications, queued sends,
  // framing and decoding of application data.
  void after_botan() {
    if (!failure && activation_pending) {
      activation_pending = false;
      if (out.activated) out.activated();
    }
    while (!failure && !pending_sends.empty() && channel->is_active()) {
      auto frame = std::move(pending_sends.front());
      pending_sends.pop_front();
      guarded("send", [&] { channel->send(frame.data(), frame.size()); });
    }
    if (!failure && !plaintext.empty()) {
      auto chunk = std::move(plaintext);
      plaintext = secret_bytes{};
      if (auto err = decoder.feed(chunk.data(), chunk.size())) fail_and_close(err);
      while (!failure && !closed_by_owner) {
        auto payload = decoder.next();
        if (!payload) break;
        auto msg =
            wire::decode(payload->data(), payload->size(), opts.min_version, opts.max_version);
        if (!msg) {
          fail_and_close(msg.error());
          break;
        }
        out.message(std::move(*msg));
      }
    }
    if (!close_reported && !closed_by_owner && (failure || peer_closed)) {
      close_reported = true;
      if (out.closed) out.closed(failure);
    }
  }

  void fail_and_close(const caf::error& err) {
    fail(err);
    guarded("close", [&] {
      if (!channel->is_closed()) channel->close();
    });
  }

  bool active() const { return !failure && !closed_by_owner && channel && channel->is_active(); }

  std::shared_ptr<tls_session_cache> cache;
  credentials creds;
  tls_policy policy;
  pin_check check;
  tls_outputs out;
  tls_options opts;
  frame_decoder decoder;
  std::string peer_label;

  secret_bytes plaintext;
  std::deque<secret_bytes> pending_sends;
  int botan_depth = 0;
  bool certificate_verified = false;
  bool activation_pending = false;
  bool peer_closed = false;
  bool closed_by_owner = false;
  bool close_reported = false;
  std::string group;
  std::optional<thumbprint> presented;
  std::vector<uint8_t> presented_der;
  std::optional<certificate_validity> validity;
  std::optional<peer_trust> trust;
  caf::error rejection;
  caf::error failure;
  std::optional<tls_handshake_info> info;

  // Last member: destroyed first, while everything its callbacks reach is still alive.
  std::unique_ptr<Botan::TLS::Channel> channel;
};

tls_session::tls_session(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

tls_session::~tls_session() = default;

caf::error tls_session::received(const uint8_t* data, size_t size) {
  auto& s = *impl_;
  if (s.failure) return s.failure;
  if (s.closed_by_owner || s.channel->is_closed())
    return make_error(ec::invalid_state,
                      "the TLS session with " + s.peer_label + " is closed; open a new connection");
  s.guarded("session", [&] { s.channel->received_data(data, size); });
  s.after_botan();
  return s.failure;
}

caf::error tls_session::send(const wire::message& msg) {
  auto& s = *impl_;
  if (s.failure) return s.failure;
  if (!s.active())
    return make_error(ec::invalid_state,
                      std::string{"cannot send "} + wire::to_string(wire::type_of(msg)) + " to " +
                          s.peer_label + ": the TLS session is not established or is closed");
  auto payload = wire::encode(msg, s.opts.max_version);
  if (!payload) return payload.error();
  auto frame = encode_frame(payload->data(), payload->size(), s.opts.max_frame_size);
  if (!frame) return frame.error();
  if (s.botan_depth > 0) {
    s.pending_sends.push_back(std::move(*frame));
    return {};
  }
  s.guarded("send", [&] { s.channel->send(frame->data(), frame->size()); });
  return s.failure;
}

void tls_session::close() {
  auto& s = *impl_;
  if (s.closed_by_owner) return;
  s.closed_by_owner = true;
  if (s.failure) return;
  s.guarded("close", [&] {
    if (!s.channel->is_closed()) s.channel->close();
  });
}

bool tls_session::is_active() const {
  return impl_->active();
}

bool tls_session::is_closed() const {
  const auto& s = *impl_;
  return s.failure || s.closed_by_owner || s.channel->is_closed();
}

size_t tls_session::buffered_frame_bytes() const {
  return impl_->decoder.buffered();
}

std::optional<thumbprint> tls_session::peer_thumbprint() const {
  return impl_->presented;
}

const std::vector<uint8_t>& tls_session::peer_certificate_der() const {
  return impl_->presented_der;
}

const std::optional<certificate_validity>& tls_session::peer_validity() const {
  return impl_->validity;
}

const caf::error& tls_session::pin_rejection() const {
  return impl_->rejection;
}

const caf::error& tls_session::failure() const {
  return impl_->failure;
}

std::optional<tls_handshake_info> tls_session::handshake() const {
  return impl_->info;
}

// The Channel is built after `impl` exists because the client constructor already emits its hello
// through the callbacks.
tls_client_session::tls_client_session(identity local, pin_check check,
                                       std::shared_ptr<tls_session_cache> cache,
                                       const std::string& host, uint16_t port, tls_outputs outputs,
                                       tls_options options)
    : tls_session(std::make_unique<impl>(std::move(local), std::move(check), cache,
                                         std::move(outputs), std::move(options),
                                         "backup server " + format_address(host, port))) {
  auto& s = *impl_;
  s.guarded("handshake", [&] {
    s.channel = std::make_unique<Botan::TLS::Client>(
        s, cache->manager(), s.creds, s.policy, Botan::system_rng(),
        Botan::TLS::Server_Information(host, port), Botan::TLS::Protocol_Version::TLS_V12,
        std::vector<std::string>{}, reserved_tls_buffer);
  });
}

tls_server_session::tls_server_session(identity local, pin_check check,
                                       std::shared_ptr<tls_session_cache> cache,
                                       tls_outputs outputs, tls_options options)
    : tls_session(std::make_unique<impl>(std::move(local), std::move(check), cache,
                                         std::move(outputs), std::move(options), "the manager")) {
  auto& s = *impl_;
  s.channel = std::make_unique<Botan::TLS::Server>(s, cache->manager(), s.creds, s.policy,
                                                   Botan::system_rng(), false, reserved_tls_buffer);
}

}  // namespace certfleet
