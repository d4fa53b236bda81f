#include "protocol/tls_session_cache.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <iterator>
#include <list>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include <botan/system_rng.h>
#include <botan/tls_session_manager.h>

#include "common/bytes.hpp"
#include "common/fs.hpp"
#include "crypto/botan_secret.hpp"
#include "crypto/sealing.hpp"

namespace certfleet {

namespace {

using session_ptr = std::shared_ptr<const Botan::TLS::Session>;

std::string as_key(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// The (host, port) a client session belongs to; also the sealing record id, so that a sealed
// session copied under another server's name fails to open.
std::string record_id_of(const Botan::TLS::Server_Information& info) {
  std::string id = "tls-session:" + info.hostname() + ":" + std::to_string(info.port());
  if (!info.service().empty()) id += "/" + info.service();
  return id;
}

bool is_persistable(const Botan::TLS::Session& s) {
  return s.side() == Botan::TLS::CLIENT && !s.server_info().empty();
}

// A Botan session manager that is bounded (LRU), keyed by session id and, for client sessions,
// by server, and whose sessions can be listed for `save`. Sessions are immutable once stored, so
// a lookup copies a shared pointer under the lock and the session itself outside it.
class session_store final : public Botan::TLS::Session_Manager {
 public:
  session_store(size_t max_sessions, std::chrono::seconds lifetime,
                tls_session_cache::clock_fn clock)
      : max_(max_sessions), lifetime_(lifetime), clock_(std::move(clock)) {}

  bool load_from_session_id(const std::vector<uint8_t>& session_id,
                            Botan::TLS::Session& session) override {
    return lookup(by_id_, as_key(session_id), session);
  }

  bool load_from_server_info(const Botan::TLS::Server_Information& info,
                             Botan::TLS::Session& session) override {
    return lookup(by_server_, record_id_of(info), session);
  }

  void remove_entry(const std::vector<uint8_t>& session_id) override {
    session_ptr dropped;
    std::lock_guard<std::mutex> guard{mtx_};
    auto it = by_id_.find(as_key(session_id));
    if (it != by_id_.end()) dropped = erase(it->second);
  }

  size_t remove_all() override {
    std::list<entry> dropped;
    std::lock_guard<std::mutex> guard{mtx_};
    by_id_.clear();
    by_server_.clear();
    dropped.swap(lru_);
    return dropped.size();
  }

  void save(const Botan::TLS::Session& session) override {
    if (session.session_id().empty()) return;
    insert(std::make_shared<const Botan::TLS::Session>(session));
  }

  std::chrono::seconds session_lifetime() const override { return lifetime_; }

  bool expired(const Botan::TLS::Session& s, std::chrono::system_clock::time_point now) const {
    return lifetime_.count() > 0 && now - s.start_time() > lifetime_;
  }

  std::chrono::system_clock::time_point now() const {
    return clock_ ? clock_() : std::chrono::system_clock::now();
  }

  // Makes `s` the most recently used session, replacing any with the same id or server. `load`
  // inserts least recently used first, so the order of the previous run survives.
  void insert(session_ptr s) {
    auto id = as_key(s->session_id());
    auto server = is_persistable(*s) ? record_id_of(s->server_info()) : std::string{};
    session_ptr dropped[3];
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto it = by_id_.find(id); it != by_id_.end()) dropped[0] = erase(it->second);
    if (!server.empty())
      if (auto it = by_server_.find(server); it != by_server_.end()) dropped[1] = erase(it->second);
    while (max_ != 0 && lru_.size() >= max_) dropped[2] = erase(std::prev(lru_.end()));
    lru_.push_front(entry{id, server, std::move(s)});
    by_id_[id] = lru_.begin();
    if (!server.empty()) by_server_[server] = lru_.begin();
  }

  /// Client sessions, least recently used first.
  std::vector<session_ptr> client_sessions() const {
    std::vector<session_ptr> out;
    std::lock_guard<std::mutex> guard{mtx_};
    out.reserve(by_server_.size());
    for (auto it = lru_.rbegin(); it != lru_.rend(); ++it)
      if (!it->server.empty()) out.push_back(it->session);
    return out;
  }

  size_t size() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return lru_.size();
  }

 private:
  struct entry {
    std::string id;
    std::string server;  // empty for server-side sessions
    session_ptr session;
  };
  using index = std::unordered_map<std::string, std::list<entry>::iterator>;

  bool lookup(index& idx, const std::string& key, Botan::TLS::Session& out) {
    auto t = now();
    session_ptr found;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      auto it = idx.find(key);
      if (it == idx.end()) return false;
      if (expired(*it->second->session, t)) {
        found = erase(it->second);
        return false;
      }
      lru_.splice(lru_.begin(), lru_, it->second);
      found = it->second->session;
    }
    out = *found;
    return true;
  }

  // Returns the session so that the caller frees it (secure memory, certificates) after unlocking.
  session_ptr erase(std::list<entry>::iterator pos) {
    by_id_.erase(pos->id);
    if (!pos->server.empty()) by_server_.erase(pos->server);
    auto s = std::move(pos->session);
    lru_.erase(pos);
    return s;
  }

  const size_t max_;
  const std::chrono::seconds lifetime_;
  const tls_session_cache::clock_fn clock_;
  mutable std::mutex mtx_;
  std::list<entry> lru_;  // most recently used first
  index by_id_;
  index by_server_;
};

// The session file: magic, version, count, then per session its record id and sealed DER.
constexpr uint8_t session_file_magic[4] = {'C', 'F', 'T', 'S'};
constexpr uint8_t session_file_version = 1;
constexpr size_t max_record_id = 1024;
constexpr size_t max_sealed_session = 64 * 1024;

caf::error unusable_session_file(ec code, const std::filesystem::path& file,
                                 const std::string& cause) {
  return make_error(code, "TLS session file " + file.string() + " " + cause +
                              "; it was ignored (servers do one full handshake instead of "
                              "resuming) and is replaced at the next orderly stop");
}

// A damaged or modified file is evidence (of a failing disk, a stray tool, someone editing it),
// which the next orderly stop would overwrite: it is kept as FILE.corrupt, replacing an older one.
// It holds only sealed sessions, nothing in plaintext.
caf::error set_aside(const std::filesystem::path& file, caf::error err) {
  auto aside = file;
  aside += ".corrupt";
  std::error_code ec;
  std::filesystem::rename(file, aside, ec);
  auto note = ec ? "; it could not be moved aside to " + aside.string() + " (" + ec.message() + ")"
                 : "; the damaged file was moved aside to " + aside.string() +
                       " (delete it once it is no longer needed)";
  return make_error(code_of(err), describe(err) + note);
}

}  // namespace

struct tls_session_cache::impl {
  impl(size_t max_sessions, std::chrono::seconds lifetime, clock_fn clock)
      : store(max_sessions, lifetime, std::move(clock)),
        ticket_key(from_botan(Botan::system_rng().random_vec(32))) {}
  session_store store;
  secret_bytes ticket_key;
};

tls_session_cache::tls_session_cache(size_t max_sessions, std::chrono::seconds lifetime,
                                     clock_fn clock)
    : impl_(std::make_unique<impl>(max_sessions, lifetime, std::move(clock))) {}

tls_session_cache::~tls_session_cache() = default;

Botan::TLS::Session_Manager& tls_session_cache::manager() {
  return impl_->store;
}

const secret_bytes& tls_session_cache::ticket_key() const {
  return impl_->ticket_key;
}

size_t tls_session_cache::size() const {
  return impl_->store.size();
}

caf::error tls_session_cache::save(const std::filesystem::path& file,
                                   const master_key& sealing) const {
  const auto& store = impl_->store;
  auto now = store.now();
  std::vector<std::pair<std::string, sealed_blob>> records;
  for (const auto& s : store.client_sessions()) {
    if (store.expired(*s, now)) continue;
    auto id = record_id_of(s->server_info());
    secret_bytes der;
    try {
      der = from_botan(s->DER_encode());
    } catch (const std::exception& e) {
      return make_error(ec::crypto_failure, "encoding the TLS session of " + id +
                                                " failed: " + e.what() + "; nothing was saved");
    }
    auto blob = seal(sealing, id, der);
    if (!blob) return blob.error();
    records.emplace_back(std::move(id), std::move(*blob));
  }
  byte_writer w;
  w.raw(session_file_magic, sizeof session_file_magic);
  w.u8(session_file_version);
  w.u32(static_cast<uint32_t>(records.size()));
  for (const auto& [id, blob] : records) {
    w.str(id);
    w.bytes(blob.bytes.data(), blob.bytes.size());
  }
  return write_file_atomically(file, w.data().data(), w.data().size(), 0600);
}

caf::expected<size_t> tls_session_cache::load(const std::filesystem::path& file,
                                              const master_key& sealing) {
  auto n = load_file(file, sealing);
  if (!n && (code_of(n.error()) == ec::corrupt_data || code_of(n.error()) == ec::tampered))
    return set_aside(file, std::move(n.error()));
  return n;
}

caf::expected<size_t> tls_session_cache::load_file(const std::filesystem::path& file,
                                                   const master_key& sealing) {
  auto content = read_file(file);
  if (!content) {
    if (code_of(content.error()) == ec::not_found) return size_t{0};
    return unusable_session_file(ec::io_error, file,
                                 "could not be read (" + describe(content.error()) + ")");
  }
  return load_bytes(content->data(), content->size(), file, sealing);
}

caf::expected<size_t> tls_session_cache::load_bytes(const uint8_t* data, size_t size,
                                                    const std::filesystem::path& file,
                                                    const master_key& sealing) {
  byte_reader r(data, size);
  uint8_t magic[sizeof session_file_magic];
  uint8_t version = 0;
  uint32_t count = 0;
  if (!r.raw(magic, sizeof magic) ||
      !std::equal(std::begin(magic), std::end(magic), std::begin(session_file_magic)))
    return unusable_session_file(ec::corrupt_data, file, "is not a certfleet TLS session file");
  if (!r.u8(version) || version != session_file_version)
    return unusable_session_file(ec::corrupt_data, file,
                                 "has unknown format version " + std::to_string(version));
  if (!r.u32(count))
    return unusable_session_file(ec::corrupt_data, file, "is truncated in its header");

  // Read every record first (cheap), then unseal and decode them on all cores: decoding a session
  // parses its certificates, about 50 us each, and 10,000 of them took 0.5 s of a resumed storm's
  // start on one core (benchmarks/RESULTS.md). Errors are reported for the first bad record in
  // file order, as a sequential load would, and a bad file adds nothing.
  struct record {
    std::string id;
    sealed_blob blob;
    session_ptr session;
    caf::error error;
  };
  std::vector<record> records;
  records.reserve(std::min<size_t>(count, r.remaining() / 16));
  for (uint32_t i = 0; i < count; ++i) {
    record rec;
    if (!r.str(rec.id, max_record_id) || !r.bytes(rec.blob.bytes, max_sealed_session))
      return unusable_session_file(ec::corrupt_data, file,
                                   "is truncated or corrupt at session " + std::to_string(i + 1) +
                                       " of " + std::to_string(count));
    records.push_back(std::move(rec));
  }
  if (!r.at_end())
    return unusable_session_file(
        ec::corrupt_data, file,
        "has " + std::to_string(r.remaining()) + " unexpected bytes after its last session");

  auto decode = [&](record& rec) {
    auto der = open(sealing, rec.id, rec.blob);
    if (!der && code_of(der.error()) == ec::tampered) {
      rec.error = unusable_session_file(ec::tampered, file,
                                        "holds a session for " + rec.id +
                                            " that does not open under this daemon's master key "
                                            "(the file was sealed under another master key or "
                                            "modified)");
      return;
    }
    if (!der) {
      rec.error = unusable_session_file(code_of(der.error()), file,
                                        "could not be unsealed: " + describe(der.error()));
      return;
    }
    try {
      rec.session = std::make_shared<const Botan::TLS::Session>(der->data(), der->size());
    } catch (const std::exception& e) {
      rec.error = unusable_session_file(
          ec::corrupt_data, file,
          "holds an undecodable session for " + rec.id + " (" + e.what() + ")");
      return;
    }
    if (!is_persistable(*rec.session) || record_id_of(rec.session->server_info()) != rec.id)
      rec.error = unusable_session_file(ec::corrupt_data, file,
                                        "holds a session that does not belong to " + rec.id);
  };
  size_t threads =
      std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), records.size() / 256 + 1);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < records.size(); i = next++) decode(records[i]);
  };
  std::vector<std::thread> helpers;
  try {
    for (size_t t = 1; t < threads; ++t) helpers.emplace_back(work);
  } catch (const std::system_error&) {
    // No thread to spare (resource limits): this thread decodes the rest.
  }
  work();
  for (auto& t : helpers) t.join();

  auto& store = impl_->store;
  auto now = store.now();
  for (auto& rec : records)
    if (rec.error) return std::move(rec.error);
  size_t added = 0;
  for (auto& rec : records)
    if (!store.expired(*rec.session, now)) {
      store.insert(std::move(rec.session));
      ++added;
    }
  return added;
}

}  // namespace certfleet
