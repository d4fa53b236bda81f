#include "agent/endpoint.hpp"

#include <spdlog/spdlog.h>

#include "agent/inventory.hpp"
#include "common/peer_text.hpp"
#include "crypto/password_hash.hpp"

namespace certfleet::agent {

// --- lock-out ---------------------------------------------------------------------------------

namespace {
constexpr size_t max_tracked_names = 4096;
}

bool lockout_tracker::locked(const std::string& name,
                             std::chrono::system_clock::time_point now) const {
  auto it = entries_.find(name);
  return it != entries_.end() && now < it->second.locked_until;
}

bool lockout_tracker::record_failure(const std::string& name,
                                     std::chrono::system_clock::time_point now) {
  if (entries_.size() >= max_tracked_names && entries_.count(name) == 0) {
    // Forget names that are neither locked nor recently failing; if every slot is busy, the
    // oldest-looking one goes, which costs an attacker nothing he could not get by waiting.
    for (auto it = entries_.begin(); it != entries_.end();) {
      bool stale =
          now >= it->second.locked_until &&
          (it->second.failures.empty() || now - it->second.failures.back() > policy_.window);
      it = stale ? entries_.erase(it) : std::next(it);
    }
    if (entries_.size() >= max_tracked_names) entries_.erase(entries_.begin());
  }
  auto& e = entries_[name];
  while (!e.failures.empty() && now - e.failures.front() > policy_.window) e.failures.pop_front();
  e.failures.push_back(now);
  if (static_cast<int>(e.failures.size()) >= policy_.max_failures) {
    e.failures.clear();
    e.locked_until = now + policy_.lock_duration;
    return true;
  }
  return false;
}

void lockout_tracker::record_success(const std::string& name) {
  entries_.erase(name);
}

// --- endpoint ---------------------------------------------------------------------------------

endpoint::endpoint(endpoint_options options, identity id, account_book accounts,
                   thumbprint_set managers, agent_store* store)
    : options_(std::move(options)),
      identity_(std::move(id)),
      cache_(std::make_shared<tls_session_cache>(options_.session_cache_size)),
      accounts_(std::move(accounts)),
      managers_(std::move(managers)),
      store_(store),
      lockout_(options_.lockout) {}

void endpoint::replace_identity(identity id) {
  identity_ = std::move(id);
  ++identity_generation_;
  cache_ = std::make_shared<tls_session_cache>(options_.session_cache_size);
}

caf::expected<bool> endpoint::revoke(const thumbprint& t) {
  auto removed = store_->remove_manager(options_.index, t);
  if (!removed) return removed;
  managers_.erase(t);
  return removed;
}

wire::message endpoint::register_manager(const wire::register_request& req,
                                         const thumbprint& tls_peer,
                                         const std::string& peer_address,
                                         const std::vector<uint8_t>& certificate_der) {
  // The peer chose these: escaped and bounded before they reach a log line or a reply.
  const auto account_name = certfleet::peer_text(req.account);
  const auto manager_name = certfleet::peer_text(req.manager_name);
  auto refuse = [&](wire::denial_reason reason, std::string detail) -> wire::message {
    spdlog::warn("endpoint {}: registration from {} (manager '{}', account '{}') refused: {}",
                 options_.index, peer_address, manager_name, account_name, detail);
    return wire::denied{reason, std::move(detail)};
  };
  if (faults_.deny_registrations)
    return refuse(wire::denial_reason::not_accepting,
                  "this backup server does not accept registrations at the moment");
  if (req.manager_thumbprint != tls_peer)
    return refuse(wire::denial_reason::thumbprint_mismatch,
                  "the message names manager certificate " + req.manager_thumbprint.to_string() +
                      " but the TLS connection presented " + tls_peer.to_string());
  if (auto denial = check_account(req.account, req.password,
                                  "registration (manager '" + manager_name + "')", peer_address))
    return *denial;
  auto now = options_.clock();
  manager_record rec{
      tls_peer, manager_name,
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count(),
      certificate_der};
  if (auto err = store_->put_manager(options_.index, rec)) {
    spdlog::error("endpoint {}: cannot store manager {}: {}", options_.index, tls_peer.to_string(),
                  describe(err));
    return refuse(wire::denial_reason::internal_error,
                  "the backup server cannot store the registration");
  }
  bool again = !managers_.insert(tls_peer).second;
  spdlog::info("endpoint {}: manager '{}' ({}) {} by account '{}' from {}", options_.index,
               manager_name, tls_peer.to_string(), again ? "registered again" : "registered",
               account_name, peer_address);
  return wire::registered{identity_.sha256(), options_.server_id};
}

std::optional<wire::denied> endpoint::check_account(const std::string& account,
                                                    const secret_bytes& password,
                                                    const std::string& what,
                                                    const std::string& peer_address) {
  // The peer chose the account name: escaped and bounded before it reaches a log line or a reply.
  const auto account_name = certfleet::peer_text(account);
  auto refuse = [&](wire::denial_reason reason, std::string detail) {
    spdlog::warn("endpoint {}: {} from {} (account '{}') refused: {}", options_.index, what,
                 peer_address, account_name, detail);
    return wire::denied{reason, std::move(detail)};
  };
  auto now = options_.clock();
  if (lockout_.locked(account, now))
    return refuse(
        wire::denial_reason::locked_out,
        "account '" + account_name + "' is locked after repeated failed logins; try again later");
  // The same hash work for an unknown name as for a wrong password (agent/accounts.hpp).
  auto checked = accounts_.check_password(account, password);
  if (!checked) {
    spdlog::error("endpoint {}: cannot check the password of account '{}': {}", options_.index,
                  account_name, describe(checked.error()));
    return refuse(wire::denial_reason::internal_error,
                  "the backup server cannot check this account's password");
  }
  const struct account* acc = *checked;
  if (!acc) {
    bool now_locked = lockout_.record_failure(account, now);
    if (now_locked)
      spdlog::warn("endpoint {}: account '{}' locked for {} s after {} failed logins",
                   options_.index, account_name, options_.lockout.lock_duration.count(),
                   options_.lockout.max_failures);
    return refuse(wire::denial_reason::bad_credentials, "unknown account or wrong password");
  }
  lockout_.record_success(account);
  if (acc->role != role::administrator)
    return refuse(wire::denial_reason::insufficient_role,
                  "account '" + account_name + "' has the " + display_name(acc->role) +
                      " role; registration needs a Backup Administrator");
  return std::nullopt;
}

wire::message endpoint::legacy_login(const wire::legacy_login& req,
                                     const std::string& peer_address) {
  if (auto denial = check_account(req.account, req.password, "legacy login", peer_address))
    return *denial;
  spdlog::debug("endpoint {}: legacy login by account '{}' from {}", options_.index,
                certfleet::peer_text(req.account), peer_address);
  return wire::legacy_accepted{identity_.sha256(), options_.server_id};
}

wire::inventory endpoint::inventory() const {
  return synthetic_inventory(options_.server_id, options_.clock());
}

// --- connection -------------------------------------------------------------------------------

connection_logic::connection_logic(endpoint& ep, std::string peer_address)
    : ep_(ep), peer_(std::move(peer_address)) {}

pin_check::verdict connection_logic::check_pin(const thumbprint& presented) {
  presented_ = presented;
  // A legacy server registers no manager: every certificate is a stranger's until it logs in.
  return !ep_.options().legacy && ep_.is_manager(presented) ? peer_trust::pinned
                                                            : peer_trust::unpinned;
}

wire::hello connection_logic::own_hello() const {
  auto v = ep_.protocol_version();
  return wire::hello{v, v, ep_.options().peer_name};
}

connection_logic::step connection_logic::on_message(wire::message&& m) {
  step s;
  // Every refusal answers denied{reason, detail} before the connection closes, so that the
  // manager can tell the operator what to do instead of seeing the session just end.
  auto refuse = [&](wire::denial_reason code, std::string why) {
    s.replies.push_back(wire::denied{code, why});
    s.close = true;
    s.reason = std::move(why);
    return s;
  };
  const char* type = wire::to_string(wire::type_of(m));
  if (!presented_)
    return refuse(wire::denial_reason::internal_error, "no client certificate was checked");
  switch (state_) {
    case state::awaiting_hello: {
      auto* h = std::get_if<wire::hello>(&m);
      if (!h)
        return refuse(wire::denial_reason::protocol_violation,
                      std::string{"sent "} + type + " before hello");
      auto v = ep_.protocol_version();
      if (h->min_version > v || h->max_version < v) {
        // Version negotiation: the manager learns from this hello which version to offer next.
        hello_sent_ = true;
        s.replies.push_back(own_hello());
        return refuse(wire::denial_reason::unsupported_version,
                      "speaks protocol versions " + std::to_string(h->min_version) + ".." +
                          std::to_string(h->max_version) + ", this agent only version " +
                          std::to_string(v));
      }
      if (ep_.options().legacy) {
        // The legacy protocol has no registration to hide the hello behind.
        state_ = state::awaiting_login;
        hello_sent_ = true;
        s.replies.push_back(own_hello());
      } else if (ep_.is_manager(*presented_)) {
        state_ = state::trusted;
        hello_sent_ = true;
        s.replies.push_back(own_hello());
      } else {
        // Nothing is sent to an unknown certificate before it asks to register.
        state_ = state::registration_only;
      }
      return s;
    }
    case state::awaiting_login: {
      auto* l = std::get_if<wire::legacy_login>(&m);
      if (!l)
        return refuse(wire::denial_reason::protocol_violation,
                      std::string{"sent "} + type + " before legacy_login");
      auto answer = ep_.legacy_login(*l, peer_);
      if (auto* d = std::get_if<wire::denied>(&answer)) return refuse(d->reason, d->detail);
      state_ = state::trusted;
      s.replies.push_back(std::move(answer));
      return s;
    }
    case state::registration_only: {
      auto* r = std::get_if<wire::register_request>(&m);
      if (!r)
        return refuse(wire::denial_reason::not_registered,
                      std::string{"unknown client certificate "} + presented_->to_string() +
                          " sent " + type +
                          " instead of register_request; only registration is "
                          "allowed for certificates that are not a registered manager's");
      return handle_register(*r);
    }
    case state::trusted: {
      auto* r = std::get_if<wire::register_request>(&m);
      if (r != nullptr && !ep_.options().legacy) return handle_register(*r);
      if (std::holds_alternative<wire::collect>(m)) {
        s.replies.push_back(ep_.inventory());
        return s;
      }
      if (auto* p = std::get_if<wire::ping>(&m)) {
        s.replies.push_back(wire::pong{p->nonce});
        return s;
      }
      if (std::holds_alternative<wire::pong>(m)) return s;
      if (auto* r = std::get_if<wire::rotate_manager_certificate>(&m)) {
        s.replies.push_back(ep_.store_successor(*presented_, r->certificate_der));
        return s;
      }
      if (auto* r = std::get_if<wire::retire_manager_certificate>(&m)) {
        s.replies.push_back(ep_.retire_predecessor(*presented_, r->retired));
        return s;
      }
      if (auto* e = std::get_if<wire::error_message>(&m)) {
        // The manager ends the session itself; nothing is refused.
        s.close = true;
        s.reason = "the manager reported an error: " + certfleet::peer_text(e->text);
        return s;
      }
      return refuse(wire::denial_reason::protocol_violation,
                    std::string{"sent "} + type + ", which a manager never sends");
    }
  }
  return refuse(wire::denial_reason::internal_error, "internal state error");
}

connection_logic::step connection_logic::handle_register(const wire::register_request& req) {
  step s;
  if (!hello_sent_) {
    hello_sent_ = true;
    s.replies.push_back(own_hello());
  }
  auto answer = ep_.register_manager(
      req, *presented_, peer_, peer_certificate ? peer_certificate() : std::vector<uint8_t>{});
  if (std::holds_alternative<wire::registered>(answer)) state_ = state::trusted;
  s.replies.push_back(std::move(answer));
  return s;
}

}  // namespace certfleet::agent
