#include "agent/state.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"

namespace certfleet::agent {

namespace fs = std::filesystem;

namespace {

constexpr auto validity = std::chrono::hours{24 * 365};
const std::string kind_key = "kind";
const std::string value_key_pem = "identity.key";
const std::string value_cert_pem = "identity.crt";
const std::string value_accounts = "accounts";

std::string random_hex(size_t bytes) {
  std::random_device rd;
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    auto b = rd() & 0xff;
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

caf::error check_kind(agent_store& store, const std::string& want) {
  auto kind = store.get_meta(kind_key);
  if (!kind) return kind.error();
  if (!*kind) return store.put_meta(kind_key, want);
  if (**kind != want)
    return make_error(ec::invalid_state,
                      "the state directory " + store.dir().parent_path().string() + " belongs to " +
                          (**kind == "fleet" ? "a simulated fleet ('certfleet-agent fleet')"
                                             : "a single agent ('certfleet-agent run')") +
                          "; use another --state-dir");
  return {};
}

struct file_stamp {
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = -1;
  bool operator!=(const file_stamp& o) const {
    return ino != o.ino || size != o.size || mtime_ns != o.mtime_ns;
  }
};

file_stamp stamp_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return {};
  return {st.st_ino, st.st_size, int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
}

std::string fleet_server_id(const std::string& fleet_id, size_t i) {
  return "fleet-" + fleet_id + "-" + std::to_string(i);
}

caf::expected<thumbprint_set> managers_of(agent_store& store, uint32_t index) {
  auto list = store.managers(index);
  if (!list) return list.error();
  thumbprint_set out;
  for (const auto& m : *list) out.insert(m.manager_thumbprint);
  return out;
}

// Runs fn(i) for i in [0, n) on `threads` threads; the first error wins.
caf::error parallel_for(size_t n, size_t threads, const std::function<caf::error(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  caf::error first;
  std::vector<std::thread> pool;
  for (size_t t = 0; t < std::max<size_t>(1, threads); ++t)
    pool.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) {
        if (auto err = fn(i)) {
          std::lock_guard<std::mutex> lock(mu);
          if (!first) first = err;
          return;
        }
      }
    });
  for (auto& th : pool) th.join();
  return first;
}

}  // namespace

state_paths::state_paths(fs::path r)
    : root(std::move(r)),
      certs(root / "certs"),
      accounts(root / "accounts.json"),
      db(root / "db"),
      manifest(root / "manifest.json"),
      control_socket(root / "fleet.sock") {}

identity_subject agent_subject(const std::string& server_id) {
  return identity_subject{server_id, "certfleet simulated backup server"};
}

// --- single agent -------------------------------------------------------------------------------

caf::expected<identity> regenerate_single_identity(const fs::path& root,
                                                   const std::string& server_id) {
  state_paths p(root);
  auto store = certificate_store::open(p.certs, true);
  if (!store) return store.error();
  auto id = identity::generate(agent_subject(server_id), validity, "certfleet agent");
  if (!id) return id.error();
  if (auto err = store->install(*id)) return err;
  return id;
}

caf::expected<single_agent> open_single_agent(const fs::path& root,
                                              const single_agent_options& options) {
  state_paths p(root);
  if (auto err = ensure_directory(p.root, 0700)) return err;
  if (auto err = check_private_directory(p.root)) return err;
  single_agent out;
  auto store = agent_store::open(p.db);
  if (!store) return store.error();
  out.store = std::move(*store);
  if (auto err = check_kind(*out.store, "single")) return err;

  auto server_id = out.store->get_meta("server_id");
  if (!server_id) return server_id.error();
  if (!*server_id) {
    *server_id = "agent-" + random_hex(8);
    if (auto err = out.store->put_meta("server_id", **server_id)) return err;
  }

  auto certs = certificate_store::open(p.certs, true);
  if (!certs) return certs.error();
  if (!certs->has_current()) {
    auto id = regenerate_single_identity(root, **server_id);
    if (!id) return id.error();
    out.identity_created = true;
  }
  auto id = certs->load_current();
  if (!id) return id.error();

  if (!fs::exists(p.accounts)) {
    if (auto err = account_book{}.save(p.accounts)) return err;
    out.accounts_created = true;
  }
  auto book = account_book::load(p.accounts);
  if (!book) return book.error();

  auto managers = managers_of(*out.store, 0);
  if (!managers) return managers.error();

  endpoint_options eo;
  eo.index = 0;
  eo.server_id = **server_id;
  eo.peer_name = **server_id;
  eo.lockout = options.lockout;
  eo.clock = options.clock;
  eo.legacy = options.legacy;
  out.ep =
      std::make_unique<endpoint>(eo, *id, std::move(*book), std::move(*managers), out.store.get());

  // Pick up `cert regenerate` and `accounts add/remove` made by the CLI while running.
  struct stamps {
    file_stamp cert, accounts;
  };
  auto seen = std::make_shared<stamps>(stamps{stamp_of(p.certs / "current"), stamp_of(p.accounts)});
  out.ep->before_connection = [p, seen](endpoint& ep) {
    auto cert_now = stamp_of(p.certs / "current");
    if (cert_now != seen->cert) {
      seen->cert = cert_now;
      auto certs = certificate_store::open(p.certs, false);
      auto id = certs ? certs->load_current() : caf::expected<identity>(certs.error());
      if (id) {
        ep.replace_identity(*id);
        spdlog::info("certificate changed on disk; now presenting {}", id->sha256().to_string());
      } else {
        spdlog::error("cannot load the new certificate, keeping the old one: {}",
                      describe(id.error()));
      }
    }
    auto accounts_now = stamp_of(p.accounts);
    if (accounts_now != seen->accounts) {
      seen->accounts = accounts_now;
      auto book = account_book::load(p.accounts);
      if (book) {
        ep.accounts() = std::move(*book);
        spdlog::info("accounts file changed on disk; reloaded");
      } else {
        spdlog::error("cannot reload the accounts file, keeping the old accounts: {}",
                      describe(book.error()));
      }
    }
  };
  out.ep->regenerate = [root, seen, p](endpoint& ep) -> caf::expected<identity> {
    auto id = regenerate_single_identity(root, ep.options().server_id);
    if (id) seen->cert = stamp_of(p.certs / "current");
    return id;
  };
  return out;
}

// --- fleet --------------------------------------------------------------------------------------

uint64_t fds_needed(size_t count) {
  return uint64_t{count} + 100;
}

caf::error check_fd_budget(size_t count, uint64_t limit) {
  auto need = fds_needed(count);
  if (need <= limit) return {};
  return make_error(ec::invalid_argument,
                    std::to_string(count) + " endpoints need about " + std::to_string(need) +
                        " file descriptors; the limit is " + std::to_string(limit) +
                        ": raise it (ulimit -n) or split the fleet over several processes");
}

caf::expected<fleet> open_fleet(const fleet_options& o) {
  if (o.count == 0 || o.count > 100'000)
    return make_error(ec::invalid_argument, "--count must be between 1 and 100000");
  if (o.admin_account.empty())
    return make_error(ec::invalid_argument, "--admin-account must not be empty");

  fleet out;
  // Addresses first: refuse a bad range before any expensive work.
  if (!o.bind_range.empty()) {
    in_addr a{};
    if (::inet_pton(AF_INET, o.bind_range.c_str(), &a) != 1)
      return make_error(ec::invalid_argument,
                        "--bind-range '" + o.bind_range + "' is not an IPv4 address");
    uint32_t first = ntohl(a.s_addr);
    uint64_t last = uint64_t{first} + o.count - 1;
    if ((first >> 24) != 127 || (last >> 24) != 127 || (last & 0xffffff) == 0xffffff)
      return make_error(ec::invalid_argument, "--bind-range " + o.bind_range + " with " +
                                                  std::to_string(o.count) +
                                                  " endpoints leaves 127.0.0.0/8; start lower");
    for (size_t i = 0; i < o.count; ++i) {
      in_addr ai{};
      ai.s_addr = htonl(first + static_cast<uint32_t>(i));
      char text[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, &ai, text, sizeof text);
      out.addresses.push_back({text, o.base_port});
    }
  } else {
    if (o.base_port != 0 && uint64_t{o.base_port} + o.count - 1 > 65535)
      return make_error(ec::invalid_argument,
                        "--base-port " + std::to_string(o.base_port) + " with " +
                            std::to_string(o.count) +
                            " endpoints passes port 65535; lower it or use --bind-range");
    for (size_t i = 0; i < o.count; ++i)
      out.addresses.push_back(
          {o.bind, o.base_port == 0 ? uint16_t{0} : static_cast<uint16_t>(o.base_port + i)});
  }

  state_paths p(o.state_dir);
  if (auto err = ensure_directory(p.root, 0700)) return err;
  if (auto err = check_private_directory(p.root)) return err;
  auto store = agent_store::open(p.db);
  if (!store) return store.error();
  out.store = std::move(*store);
  if (auto err = check_kind(*out.store, "fleet")) return err;
  auto fid = out.store->get_meta("fleet_id");
  if (!fid) return fid.error();
  if (!*fid) {
    *fid = random_hex(4);
    if (auto err = out.store->put_meta("fleet_id", **fid)) return err;
  }
  out.fleet_id = **fid;

  // Identities: reuse what is stored, generate the rest on every core.
  std::vector<std::string> keys(o.count), certs(o.count), books(o.count);
  auto collect = [&](std::vector<std::string>& into) {
    return [&into, &o](uint32_t i, const std::string& v) {
      if (i < o.count) into[i] = v;
    };
  };
  if (auto err = out.store->for_each_value(value_key_pem, collect(keys))) return err;
  if (auto err = out.store->for_each_value(value_cert_pem, collect(certs))) return err;
  if (auto err = out.store->for_each_value(value_accounts, collect(books))) return err;

  std::vector<std::optional<identity>> ids(o.count);
  std::vector<std::optional<account_book>> accounts(o.count);
  std::vector<char> identity_new(o.count, 0), accounts_new(o.count, 0);
  auto err = parallel_for(o.count, o.threads, [&](size_t i) -> caf::error {
    auto sid = fleet_server_id(out.fleet_id, i);
    auto friendly = "certfleet agent " + std::to_string(i);
    if (!keys[i].empty() && !certs[i].empty()) {
      auto id = identity::from_pem(to_secret(keys[i]), certs[i], friendly);
      if (!id) return id.error();
      ids[i] = std::move(*id);
    } else {
      auto id = identity::generate(agent_subject(sid), validity, friendly);
      if (!id) return id.error();
      ids[i] = std::move(*id);
      identity_new[i] = 1;
    }
    account_book book;
    bool keep = false;
    if (!books[i].empty()) {
      auto parsed = account_book::from_json(books[i], "endpoint " + std::to_string(i));
      if (parsed) {
        book = std::move(*parsed);
        if (const auto* a = book.find(o.admin_account); a && a->role == role::administrator) {
          auto ok = verify_password(o.admin_password, a->password_hash);
          keep = ok && *ok;
        }
      }
    }
    if (!keep) {
      auto hash = hash_password(o.admin_password, o.profile);
      if (!hash) return hash.error();
      book = account_book{};
      if (auto e = book.put({o.admin_account, role::administrator, std::move(*hash)})) return e;
      accounts_new[i] = 1;
    }
    accounts[i] = std::move(book);
    return {};
  });
  if (err) return err;

  // Persist what is new in batches; the last batch is synced.
  std::vector<endpoint_value> batch;
  for (size_t i = 0; i < o.count; ++i) {
    auto idx = static_cast<uint32_t>(i);
    if (identity_new[i]) {
      ++out.identities_generated;
      auto pem = ids[i]->private_key_pem();
      batch.push_back({idx, value_key_pem, std::string(pem.begin(), pem.end())});
      batch.push_back({idx, value_cert_pem, ids[i]->certificate_pem()});
    }
    if (accounts_new[i]) batch.push_back({idx, value_accounts, accounts[i]->to_json()});
    if (batch.size() >= 3000 || (i + 1 == o.count && !batch.empty())) {
      if (auto e = out.store->put_values(batch, i + 1 == o.count)) return e;
      batch.clear();
    }
  }

  std::vector<thumbprint_set> managers(o.count);
  if (auto e = out.store->for_each_manager([&](uint32_t i, const manager_record& r) {
        if (i < o.count) managers[i].insert(r.manager_thumbprint);
      }))
    return e;

  agent_store* raw_store = out.store.get();
  for (size_t i = 0; i < o.count; ++i) {
    endpoint_options eo;
    eo.index = static_cast<uint32_t>(i);
    eo.server_id = fleet_server_id(out.fleet_id, i);
    eo.peer_name = eo.server_id;
    eo.lockout = o.lockout;
    eo.clock = o.clock;
    eo.session_cache_size = 64;
    eo.legacy = i < o.legacy_count;
    auto ep = std::make_unique<endpoint>(eo, std::move(*ids[i]), std::move(*accounts[i]),
                                         std::move(managers[i]), raw_store);
    ep->regenerate = [raw_store](endpoint& e) -> caf::expected<identity> {
      auto idx = e.options().index;
      auto id = identity::generate(agent_subject(e.options().server_id), validity,
                                   "certfleet agent " + std::to_string(idx));
      if (!id) return id.error();
      auto pem = id->private_key_pem();
      if (auto err =
              raw_store->put_values({{idx, value_key_pem, std::string(pem.begin(), pem.end())},
                                     {idx, value_cert_pem, id->certificate_pem()}},
                                    true))
        return err;
      return id;
    };
    out.endpoints.push_back(std::move(ep));
  }
  return out;
}

caf::error write_manifest(const fs::path& path, const agent_server& server,
                          const std::string& fleet_id, const std::string& admin_account) {
  nlohmann::json list = nlohmann::json::array();
  for (size_t i = 0; i < server.size(); ++i) {
    auto a = server.address(i);
    list.push_back({{"index", i},
                    {"address", a.host},
                    {"port", a.port},
                    {"thumbprint", server.current_thumbprint(i).to_string()},
                    {"server_id", fleet_server_id(fleet_id, i)},
                    {"admin_account", admin_account}});
  }
  nlohmann::json doc = {{"version", 1},
                        {"fleet_id", fleet_id},
                        {"count", server.size()},
                        {"endpoints", std::move(list)}};
  auto text = doc.dump(1) + "\n";
  return write_file_atomically(path, text.data(), text.size(), 0644);
}

}  // namespace certfleet::agent
