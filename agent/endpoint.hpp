// One simulated (or real) backup-server endpoint, and the per-connection protocol logic that runs
// inside its TLS sessions. Nothing here touches a socket: the event loop (agent/server.hpp) moves
// bytes, feeds `tls_server_session`, and hands decoded messages to `connection_logic`.
//
// Trust rule (the "simple safe rule"): the TLS pin check accepts every well-formed client
// certificate, and the connection logic then decides what the connection may do:
//
//   known manager cert:  awaiting_hello --hello--> trusted (collect, ping, register_request)
//   unknown cert:        awaiting_hello --hello--> registration_only
//                           registration_only --register_request ok--> trusted
//                           registration_only --anything else--> closed (reason logged)
//
// A registration-only connection receives NO application data until it has sent a
// register_request: the agent's own hello is held back and sent just before the registration
// answer. So after a manager is registered, a stranger's certificate completes the TLS handshake
// (needed for `openssl s_client` interop and for the next registration) but is never answered with
// an inventory, a pong or even a hello; its first non-registration request closes the connection.
//
// Registration checks, in order, each refusal logged with its reason (never the password):
//   deny-registrations fault -> not_accepting; message thumbprint != TLS client certificate ->
//   thumbprint_mismatch; account locked -> locked_out; unknown account or wrong password ->
//   bad_credentials (counts towards the lock-out); role not Backup Administrator ->
//   insufficient_role. Then the manager's thumbprint is stored (RocksDB, synced) and the answer is
//   registered{own thumbprint, server id}. A manager already stored is accepted again
//   (idempotent), the stored record refreshed.
//
// Manager certificate rotation (docs/lifecycle.md): on a trusted connection, i.e. one authenticated
// by a registered manager's certificate, `rotate_manager_certificate` stores the offered
// certificate (checked: ECDSA P-256, self-signed, valid now) as that manager's successor, synced,
// before `manager_certificate_stored` answers; from then on both are accepted. Over a session of
// the successor, `retire_manager_certificate` forgets the certificate it replaced (and nothing
// else: a manager can only retire its own predecessor). A refusal is `rotation_refused`; the
// session stays up.
//
// Thread-safety: an endpoint and its connections belong to one event-loop thread; only the
// `agent_store` it writes to is shared (and thread-safe).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/accounts.hpp"
#include "common/error.hpp"
#include "crypto/identity.hpp"
#include "protocol/messages.hpp"
#include "protocol/tls_session.hpp"
#include "storage/agent_store.hpp"

namespace certfleet::agent {

using clock_fn = std::function<std::chrono::system_clock::time_point()>;

/// Orders thumbprints by their bytes (thumbprint itself only offers constant-time equality).
struct thumbprint_order {
  bool operator()(const thumbprint& a, const thumbprint& b) const { return a.bytes() < b.bytes(); }
};
using thumbprint_set = std::set<thumbprint, thumbprint_order>;

/// `max_failures` failed logins within `window` lock the account for `lock_duration`.
struct lockout_policy {
  int max_failures = 5;
  std::chrono::seconds window = std::chrono::minutes{15};
  std::chrono::seconds lock_duration = std::chrono::minutes{5};
};

/// Failed-login bookkeeping per account name (also for names that do not exist, so that probing
/// for names is throttled the same way). Bounded: at most 4,096 names are tracked.
class lockout_tracker {
 public:
  explicit lockout_tracker(lockout_policy p = {}) : policy_(p) {}
  /// True while `name` is locked at `now`.
  bool locked(const std::string& name, std::chrono::system_clock::time_point now) const;
  /// Records a failure; returns true when this failure locked the account.
  bool record_failure(const std::string& name, std::chrono::system_clock::time_point now);
  void record_success(const std::string& name);

 private:
  struct entry {
    std::deque<std::chrono::system_clock::time_point> failures;
    std::chrono::system_clock::time_point locked_until{};
  };
  lockout_policy policy_;
  std::unordered_map<std::string, entry> entries_;
};

/// Faults injected per endpoint (fleet simulation); all off by default.
struct fault_settings {
  bool offline = false;               // not listening
  bool stall = false;                 // accept TCP, never read or answer
  std::chrono::milliseconds slow{0};  // delay every flight of output by this much
  uint64_t drop_after_bytes = 0;      // close after this many bytes written (0: never)
  bool deny_registrations = false;    // answer register_request with not_accepting
};

struct endpoint_options {
  uint32_t index = 0;     // key prefix in the agent store; 0 for a single agent
  std::string server_id;  // sent in `registered` and seeding the synthetic inventory
  std::string peer_name;  // sent in `hello`
  lockout_policy lockout;
  clock_fn clock = [] { return std::chrono::system_clock::now(); };
  size_t session_cache_size = 256;
  /// Speak only the legacy protocol (version 1) of a backup server of an earlier release: no
  /// certificate registration; every session logs in with an account (`legacy_login`).
  bool legacy = false;
};

class endpoint {
 public:
  /// `store` must outlive the endpoint; it receives registered managers.
  endpoint(endpoint_options options, identity id, account_book accounts, thumbprint_set managers,
           agent_store* store);
  endpoint(const endpoint&) = delete;
  endpoint& operator=(const endpoint&) = delete;

  const endpoint_options& options() const { return options_; }
  const identity& current_identity() const { return identity_; }
  /// The session cache new connections share; replaced with the identity so that no session
  /// made under the old certificate can be resumed (a resumption would hide the new thumbprint).
  const std::shared_ptr<tls_session_cache>& session_cache() const { return cache_; }
  /// Presents `id` from now on; bumps `identity_generation()` so that the event loop closes the
  /// sessions established with the previous certificate.
  void replace_identity(identity id);
  /// Counts identity changes (0 for the identity the endpoint was built with).
  uint64_t identity_generation() const { return identity_generation_; }

  account_book& accounts() { return accounts_; }
  fault_settings& faults() { return faults_; }

  bool is_manager(const thumbprint& t) const { return managers_.count(t) != 0; }
  const thumbprint_set& managers() const { return managers_; }
  /// Forgets a manager (store first, synced); false when it was not registered.
  caf::expected<bool> revoke(const thumbprint& t);

  /// Handles a registration (see the file comment). `tls_peer` is the thumbprint of the client
  /// certificate of the connection that carried `req`. Returns `registered` or `denied`.
  /// `certificate_der` is that certificate, stored with the registration (may be empty).
  wire::message register_manager(const wire::register_request& req, const thumbprint& tls_peer,
                                 const std::string& peer_address,
                                 const std::vector<uint8_t>& certificate_der = {});

  /// Stores `certificate_der` as the successor of the registered manager `current` (see the file
  /// comment). Returns `manager_certificate_stored` or `rotation_refused`.
  wire::message store_successor(const thumbprint& current,
                                const std::vector<uint8_t>& certificate_der);
  /// Forgets `retired` when `current` was stored as its successor. Returns
  /// `manager_certificate_retired` (also when `retired` was already forgotten) or
  /// `rotation_refused`.
  wire::message retire_predecessor(const thumbprint& current, const thumbprint& retired);

  /// Checks a legacy login (`legacy_login`, version 1): the same account checks as a registration,
  /// nothing stored. Returns `legacy_accepted` or `denied`.
  wire::message legacy_login(const wire::legacy_login& req, const std::string& peer_address);

  /// The protocol version this endpoint speaks (wire::legacy_protocol_version when legacy).
  uint8_t protocol_version() const {
    return options_.legacy ? wire::legacy_protocol_version : wire::protocol_version;
  }

  /// The current synthetic inventory.
  wire::inventory inventory() const;

  /// Called by the event loop before each accepted connection is served and about once a second
  /// otherwise; a single agent uses it to pick up a certificate or accounts file changed by the
  /// CLI. Optional.
  std::function<void(endpoint&)> before_connection;
  /// Called to make and persist a new identity (the `regenerate` fault, `cert regenerate`).
  std::function<caf::expected<identity>(endpoint&)> regenerate;

 private:
  // The account checks of a registration or a legacy login: nullopt when the account is
  // accepted, else the denial.
  std::optional<wire::denied> check_account(const std::string& account,
                                            const secret_bytes& password, const std::string& what,
                                            const std::string& peer_address);

  endpoint_options options_;
  identity identity_;
  uint64_t identity_generation_ = 0;
  std::shared_ptr<tls_session_cache> cache_;
  account_book accounts_;
  thumbprint_set managers_;
  agent_store* store_;
  lockout_tracker lockout_;
  fault_settings faults_;
};

/// The protocol state machine of one accepted connection (diagram in the file comment).
class connection_logic {
 public:
  connection_logic(endpoint& ep, std::string peer_address);

  /// The TLS pin check: records the presented certificate and accepts it (the rule above decides
  /// later what the connection may do), as `pinned` when it is a registered manager's (its
  /// self-signature is then not checked again) and `unpinned` otherwise.
  pin_check::verdict check_pin(const thumbprint& presented);

  /// What to do after one message: send `replies` in order, then close if `close` (with `reason`
  /// logged by the caller).
  struct step {
    std::vector<wire::message> replies;
    bool close = false;
    std::string reason;
  };
  step on_message(wire::message&& m);

  bool trusted() const { return state_ == state::trusted; }

  /// Where a registration finds the client certificate's DER (the TLS session's); optional.
  std::function<std::vector<uint8_t>()> peer_certificate;

 private:
  enum class state { awaiting_hello, registration_only, awaiting_login, trusted };
  step handle_register(const wire::register_request& req);
  wire::hello own_hello() const;

  endpoint& ep_;
  std::string peer_;
  state state_ = state::awaiting_hello;
  std::optional<thumbprint> presented_;
  bool hello_sent_ = false;
};

}  // namespace certfleet::agent
