#include "storage/state_store.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <sys/statvfs.h>

#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "common/fs.hpp"
#include "common/vocabulary.hpp"
#include "storage/damage_check.hpp"
#include "storage/rocksdb_logger.hpp"
#include "storage/state_store_impl.hpp"

namespace certfleet {

using namespace storage_detail;

namespace {

namespace fs = std::filesystem;

// Keys the store keeps for itself in `meta`; `put_meta` refuses this prefix so callers cannot
// corrupt the event counter or the schema version.
const std::string internal_prefix = "store.";
const std::string key_schema_version = "store.schema_version";
const std::string key_last_event_seq = "store.last_event_seq";
const std::string key_first_event_seq = "store.first_event_seq";
const std::string key_connectivity_trim_seq = "store.connectivity_trim_seq";
const std::string key_trust_events_below = "store.trust_events_below";
const std::string key_master_key_id = "store.master_key_id";

/// connection_up and connection_down: removed by count as well as by age (trim_events). Every
/// other type, unknown ones included, is trust history, removed by age only.
bool is_connectivity_event(const std::string& type) {
  auto t = parse_event_type(type);
  return t && !is_trust_event(*t);
}

std::string seq_key(uint64_t seq) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i) {
    k[static_cast<size_t>(i)] = static_cast<char>(seq & 0xff);
    seq >>= 8;
  }
  return k;
}

bool parse_seq_key(const rocksdb::Slice& k, uint64_t& seq) {
  if (k.size() != 8) return false;
  seq = 0;
  for (size_t i = 0; i < 8; ++i) seq = (seq << 8) | static_cast<uint8_t>(k[i]);
  return true;
}

bool parse_u64(const std::string& s, uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "12.5 MiB": free space as a person reads it.
std::string human_bytes(uint64_t n) {
  static const char* const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(n));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::string free_space_text(const fs::path& dir) {
  struct statvfs v {};
  if (::statvfs(dir.c_str(), &v) != 0) return "free space unknown";
  return human_bytes(static_cast<uint64_t>(v.f_bavail) * v.f_frsize) + " free";
}

bool is_lock_held(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  auto text = s.ToString();
  return text.find("/LOCK") != std::string::npos || text.find("lock hold") != std::string::npos;
}

rocksdb::DBOptions make_db_options() {
  rocksdb::DBOptions o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  o.paranoid_checks = true;
  // Obsolete files must be deleted by the thread that made them obsolete, so that erasure can
  // return only once they are gone.
  o.avoid_unnecessary_blocking_io = false;
  // Recycled or archived write-ahead logs would keep old bytes around on purpose.
  o.recycle_log_file_num = 0;
  o.WAL_ttl_seconds = 0;
  o.WAL_size_limit_MB = 0;
  // Recovery keeps the log up to its first missing or torn record: what survives a power loss is
  // a prefix, which is what keeps events gap-free without an fsync per event (docs/storage.md).
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // The manager needs its descriptors for connections (docs/platform.md, "File descriptors").
  o.max_open_files = 256;
  // RocksDB's file logger aborts the process on a full disk (storage/rocksdb_logger.hpp).
  o.info_log = storage_detail::make_info_logger();
  // The store resumes RocksDB itself after a full disk (`ready_for_writes`).
  o.listeners.push_back(storage_detail::make_manual_resume_listener());
  // Bounds on what piles up in the database directory under churn (docs/reliability.md): the
  // write-ahead logs by size (and by count, `max_live_logs`), the MANIFEST by size (it is rewritten
  // from scratch once larger).
  o.max_total_wal_size = 16 << 20;
  o.max_manifest_file_size = 4 << 20;
  return o;
}

rocksdb::ColumnFamilyOptions make_cf_options(const std::string& name) {
  rocksdb::ColumnFamilyOptions o;
  // Rewrites files older than a day, so tombstones of removed servers and trimmed events do not
  // keep dead data on disk indefinitely in a family that is rarely compacted otherwise.
  o.periodic_compaction_seconds = 24 * 60 * 60;
  if (name == cf_credentials) {
    // Sealed blobs are ciphertext: compression gains nothing, and storing them verbatim keeps the
    // erasure test (which looks for the raw bytes) meaningful.
    o.compression = rocksdb::kNoCompression;
  }
  return o;
}

}  // namespace

state_store::impl::~impl() {
  if (db == nullptr) return;
  if (syncer.joinable()) {
    {
      std::lock_guard<std::mutex> lock(sync_mutex);
      stop_syncer = true;
    }
    wake_syncer.notify_all();
    syncer.join();
  }
  // Close does not fsync the log; unsynced connectivity writes get their fsync here, unless a
  // failed write left the log unfit for it (RocksDB's recovery at the next open replays it).
  if (!write_failed.load()) db->SyncWAL();
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  db->Close();
  delete db;
}

caf::error state_store::impl::fail(const rocksdb::Status& s, const std::string& op) const {
  if (is_no_space(s))
    return make_error(ec::disk_full,
                      "could not " + op + " in database " + dir_text +
                          ": the file system holding it is full (" + free_space_text(dir) +
                          "); nothing was written. Reads still work; free space on that file "
                          "system and writing resumes on its own within seconds (" +
                          s.ToString() + ")");
  return make_error(ec::storage_failure,
                    "could not " + op + " in database " + dir_text + ": " + s.ToString());
}

caf::error state_store::impl::fail_exception(const std::string& op, const std::exception& e) const {
  return make_error(ec::storage_failure,
                    "could not " + op + " in database " + dir_text + ": " + e.what());
}

caf::error state_store::impl::corrupt(const std::string& what, const caf::error& err) const {
  return make_error(ec::corrupt_data,
                    what + " in database " + dir_text + " is unreadable: " + describe(err));
}

rocksdb::WriteOptions state_store::impl::wal_options(bool sync) const {
  rocksdb::WriteOptions w;
  w.sync = sync;
  return w;
}

// Assigns seqs (and missing times) to `evs` and adds them plus the counter to `batch`. The
// caller holds `write_mutex` and calls `commit_seq` only after the batch was written.
uint64_t state_store::impl::stage_events(rocksdb::WriteBatch& batch,
                                         std::vector<event_record>& evs) {
  uint64_t seq = last_seq;
  if (evs.empty()) return seq;
  auto t = now_ms();
  for (auto& e : evs) {
    e.seq = ++seq;
    if (e.time_ms == 0) e.time_ms = t;
    batch.Put(events, seq_key(e.seq), as_slice(encode(e)));
  }
  batch.Put(meta, key_last_event_seq, std::to_string(seq));
  return seq;
}

void state_store::impl::commit_seq(uint64_t seq, bool synced) {
  last_seq = seq;
  last_seq_view.store(seq);
  if (synced) raise_durable_seq(seq);
}

caf::expected<std::vector<event_record>> state_store::impl::write_events(
    std::vector<event_record> evs, const std::string& op) {
  if (evs.empty()) return evs;
  std::lock_guard<std::mutex> guard(write_mutex);
  rocksdb::WriteBatch batch;
  auto seq = stage_events(batch, evs);
  auto s = write_logged(batch, true);
  if (!s.ok()) return fail(s, op);
  commit_seq(seq, true);
  return evs;
}

caf::error state_store::impl::load_state() {
  // Schema version.
  std::string value;
  auto s = db->Get(rocksdb::ReadOptions(), meta, key_schema_version, &value);
  if (s.IsNotFound()) {
    s = note(db->Put(wal_options(true), meta, key_schema_version,
                     std::to_string(state_store::schema_version)));
    if (!s.ok()) return fail(s, "write the schema version");
  } else if (!s.ok()) {
    return fail(s, "read the schema version");
  } else {
    uint64_t v = 0;
    if (!parse_u64(value, v))
      return make_error(ec::corrupt_data, "database " + dir_text +
                                              " has an unreadable schema version '" + value +
                                              "'; restore it from a backup");
    if (v > state_store::schema_version)
      return make_error(ec::corrupt_data,
                        "database " + dir_text + " has schema version " + std::to_string(v) +
                            ", but this build of certfleet supports schema version " +
                            std::to_string(state_store::schema_version) +
                            " at most; run the newer certfleet that wrote it");
  }
  // Event counters.
  auto read_counter = [&](const std::string& key, uint64_t fallback, uint64_t& out) -> caf::error {
    std::string v;
    auto st = db->Get(rocksdb::ReadOptions(), meta, key, &v);
    if (st.IsNotFound()) {
      out = fallback;
      return {};
    }
    if (!st.ok()) return fail(st, "read " + key);
    if (!parse_u64(v, out))
      return make_error(ec::corrupt_data, "database " + dir_text + " has an unreadable " + key +
                                              " '" + v + "'; restore it from a backup");
    return {};
  };
  if (auto err = read_counter(key_last_event_seq, 0, last_seq)) return err;
  if (auto err = read_counter(key_first_event_seq, 1, first_seq)) return err;
  if (auto err = read_counter(key_connectivity_trim_seq, first_seq, connectivity_trim_seq))
    return err;
  if (auto err = read_counter(key_trust_events_below, 0, trust_events_below)) return err;
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), events));
    it->SeekToLast();
    uint64_t newest = 0;
    if (it->Valid() && (!parse_seq_key(it->key(), newest) || newest > last_seq))
      return make_error(ec::corrupt_data,
                        "database " + dir_text +
                            " holds events beyond its event counter; restore it from a backup");
    if (!it->status().ok()) return fail(it->status(), "read the events");
  }
  last_seq_view.store(last_seq);
  // Recovery flushes what the log held to table files: everything loaded is on disk.
  durable_seq_view.store(last_seq);
  first_seq_view.store(first_seq);
  // Server count.
  size_t n = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), servers));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    if (!it->status().ok()) return fail(it->status(), "count the servers");
  }
  server_count.store(n);
  // Finishes an erasure that a crash interrupted after its tombstone was flushed. On a full disk
  // the store still opens, to serve reads; the next credential write finishes the scrub.
  std::unique_lock<std::shared_mutex> lock(credential_mutex);
  scrub_pending = true;
  auto err = scrub_credentials("finish pending credential erasures");
  if (code_of(err) == ec::disk_full) return {};
  return err;
}

caf::expected<std::unique_ptr<state_store>> state_store::open(const fs::path& dir) {
  auto p = std::make_unique<impl>();
  p->dir = dir;
  p->dir_text = dir.string();
  try {
    if (auto err = ensure_directory(dir, 0700)) return err;
    auto db_options = make_db_options();
    std::vector<std::string> names{rocksdb::kDefaultColumnFamilyName,
                                   cf_servers,
                                   cf_credentials,
                                   cf_inventory,
                                   cf_events,
                                   cf_meta};
    // Nothing may be written to a damaged database, not even by RocksDB's recovery.
    if (auto err = check_before_open(db_options, dir, "database")) return err;
    std::error_code ec_ignored;
    if (fs::exists(dir / "CURRENT", ec_ignored)) {
      // A newer build may have added families; open them all so the schema check can speak.
      std::vector<std::string> existing;
      auto s = rocksdb::DB::ListColumnFamilies(db_options, p->dir_text, &existing);
      if (s.IsCorruption()) return describe_damage(s, dir, "database");
      if (!s.ok()) return p->fail(s, "list the column families");
      for (const auto& n : existing)
        if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const auto& n : names) descriptors.emplace_back(n, make_cf_options(n));
    auto s = rocksdb::DB::Open(db_options, p->dir_text, descriptors, &p->handles, &p->db);
    if (!s.ok()) {
      if (is_lock_held(s))
        return make_error(ec::storage_failure,
                          "cannot open database " + p->dir_text +
                              ": it is already open in this or another process (its LOCK file "
                              "is held); stop the other certfleet instance using " +
                              p->dir_text + " and retry (" + s.ToString() + ")");
      if (is_no_space(s))
        return make_error(ec::disk_full,
                          "cannot open database " + p->dir_text +
                              ": the file system holding it is full (" + free_space_text(p->dir) +
                              "), and opening it writes a little (recovery of the write-ahead "
                              "log, a new MANIFEST); nothing was changed. Free space on that file "
                              "system and start certfleet again (" +
                              s.ToString() + ")");
      if (s.IsCorruption()) return describe_damage(s, dir, "database");
      return p->fail(s, "open the database");
    }
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == cf_servers) p->servers = p->handles[i];
      if (names[i] == cf_credentials) p->credentials = p->handles[i];
      if (names[i] == cf_inventory) p->inventory = p->handles[i];
      if (names[i] == cf_events) p->events = p->handles[i];
      if (names[i] == cf_meta) p->meta = p->handles[i];
    }
    if (auto err = p->load_state()) return err;
    p->syncer = std::thread([raw = p.get()] { raw->run_syncer(); });
    return std::unique_ptr<state_store>(new state_store(std::move(p)));
  } catch (const std::exception& e) {
    return p->fail_exception("open the database", e);
  }
}

state_store::state_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

state_store::~state_store() = default;

const fs::path& state_store::dir() const {
  return impl_->dir;
}

// -- servers --------------------------------------------------------------------------------

caf::expected<std::vector<event_record>> state_store::put_server(const server_record& r,
                                                                 std::vector<event_record> events,
                                                                 bool sync) {
  auto& p = *impl_;
  const std::string op = "store server " + r.id;
  try {
    std::lock_guard<std::mutex> guard(p.write_mutex);
    std::string ignored;
    auto existing = p.db->Get(rocksdb::ReadOptions(), p.servers, r.id, &ignored);
    if (!existing.ok() && !existing.IsNotFound()) return p.fail(existing, op);
    rocksdb::WriteBatch batch;
    batch.Put(p.servers, r.id, as_slice(encode(r)));
    auto seq = p.stage_events(batch, events);
    auto s = p.write_logged(batch, sync);
    if (!s.ok()) return p.fail(s, op);
    p.commit_seq(seq, sync);
    if (existing.IsNotFound()) ++p.server_count;
    return events;
  } catch (const std::exception& e) {
    return p.fail_exception(op, e);
  }
}

caf::expected<std::vector<event_record>> state_store::put_servers(
    const std::vector<server_record>& records, std::vector<event_record> events) {
  auto& p = *impl_;
  const std::string op = "store " + std::to_string(records.size()) + " servers";
  try {
    std::lock_guard<std::mutex> guard(p.write_mutex);
    rocksdb::WriteBatch batch;
    std::unordered_set<std::string> fresh;  // ids not in the database yet
    std::string ignored;
    for (const auto& r : records) {
      auto existing = p.db->Get(rocksdb::ReadOptions(), p.servers, r.id, &ignored);
      if (!existing.ok() && !existing.IsNotFound()) return p.fail(existing, op);
      if (existing.IsNotFound()) fresh.insert(r.id);
      batch.Put(p.servers, r.id, as_slice(encode(r)));
    }
    auto seq = p.stage_events(batch, events);
    auto s = p.write_logged(batch, true);
    if (!s.ok()) return p.fail(s, op);
    p.commit_seq(seq, true);
    p.server_count += fresh.size();
    return events;
  } catch (const std::exception& e) {
    return p.fail_exception(op, e);
  }
}

caf::expected<std::optional<server_record>> state_store::get_server(const std::string& id) const {
  auto& p = *impl_;
  try {
    std::string value;
    auto s = p.db->Get(rocksdb::ReadOptions(), p.servers, id, &value);
    if (s.IsNotFound()) return std::optional<server_record>{};
    if (!s.ok()) return p.fail(s, "read server " + id);
    std::vector<uint8_t> bytes(value.begin(), value.end());
    auto rec = decode_server_record(bytes);
    if (!rec) return p.corrupt("server " + id, rec.error());
    return std::optional<server_record>{std::move(*rec)};
  } catch (const std::exception& e) {
    return p.fail_exception("read server " + id, e);
  }
}

caf::expected<std::vector<event_record>> state_store::remove_server(
    const std::string& id, std::vector<event_record> events) {
  auto& p = *impl_;
  const std::string op = "remove server " + id;
  try {
    // The credential goes first: if anything fails later, the secret is already gone and a retry
    // (erasing nothing) completes the removal.
    std::unique_lock<std::shared_mutex> cred_lock(p.credential_mutex);
    if (auto err = p.erase_credential_locked(id, op)) return err;
    std::lock_guard<std::mutex> guard(p.write_mutex);
    std::string ignored;
    auto existing = p.db->Get(rocksdb::ReadOptions(), p.servers, id, &ignored);
    if (!existing.ok() && !existing.IsNotFound()) return p.fail(existing, op);
    rocksdb::WriteBatch batch;
    batch.Delete(p.servers, id);
    batch.Delete(p.inventory, id);
    auto seq = p.stage_events(batch, events);
    auto s = p.write_logged(batch, true);
    if (!s.ok()) return p.fail(s, op);
    p.commit_seq(seq, true);
    if (existing.ok()) --p.server_count;
    return events;
  } catch (const std::exception& e) {
    return p.fail_exception(op, e);
  }
}

caf::error state_store::for_each_server(const std::function<bool(const server_record&)>& fn) const {
  auto& p = *impl_;
  try {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;  // a full scan would only evict the hot point-lookup blocks
    std::unique_ptr<rocksdb::Iterator> it(p.db->NewIterator(ro, p.servers));
    std::vector<uint8_t> buf;  // reused: one allocation for the whole scan
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto v = it->value();
      buf.assign(reinterpret_cast<const uint8_t*>(v.data()),
                 reinterpret_cast<const uint8_t*>(v.data()) + v.size());
      auto rec = decode_server_record(buf);
      if (!rec) return p.corrupt("server " + it->key().ToString(), rec.error());
      if (!fn(*rec)) return {};
    }
    if (!it->status().ok()) return p.fail(it->status(), "read the servers");
    return {};
  } catch (const std::exception& e) {
    return p.fail_exception("read the servers", e);
  }
}

size_t state_store::server_count() const {
  return impl_->server_count.load();
}

// -- credentials ----------------------------------------------------------------------------

caf::error state_store::put_credential(const std::string& server_id, const sealed_blob& blob) {
  auto& p = *impl_;
  const std::string op = "store the credential of server " + server_id;
  try {
    return p.put_credentials({{server_id, blob}}, op);
  } catch (const std::exception& e) {
    return p.fail_exception(op, e);
  }
}

caf::error state_store::put_credentials(
    const std::vector<std::pair<std::string, sealed_blob>>& credentials) {
  auto& p = *impl_;
  const std::string op =
      "store the credentials of " + std::to_string(credentials.size()) + " servers";
  try {
    return p.put_credentials(credentials, op);
  } catch (const std::exception& e) {
    return p.fail_exception(op, e);
  }
}

caf::expected<std::optional<sealed_blob>> state_store::get_credential(
    const std::string& server_id) const {
  auto& p = *impl_;
  try {
    std::shared_lock<std::shared_mutex> lock(p.credential_mutex);
    std::string value;
    auto s = p.db->Get(rocksdb::ReadOptions(), p.credentials, server_id, &value);
    if (s.IsNotFound()) return std::optional<sealed_blob>{};
    if (!s.ok()) return p.fail(s, "read the credential of server " + server_id);
    sealed_blob blob;
    blob.bytes.assign(value.begin(), value.end());
    return std::optional<sealed_blob>{std::move(blob)};
  } catch (const std::exception& e) {
    return p.fail_exception("read the credential of server " + server_id, e);
  }
}

caf::expected<std::vector<event_record>> state_store::erase_credential(
    const std::string& server_id, std::vector<event_record> events) {
  auto& p = *impl_;
  const std::string op = "erase the credential of server " + server_id;
  try {
    {
      std::unique_lock<std::shared_mutex> lock(p.credential_mutex);
      if (auto err = p.erase_credential_locked(server_id, op)) return err;
    }
    return p.write_events(std::move(events), op);
  } catch (const std::exception& e) {
    return p.fail_exception(op, e);
  }
}

caf::expected<std::vector<event_record>> state_store::erase_credentials(
    const std::vector<std::string>& server_ids, std::vector<event_record> events) {
  auto& p = *impl_;
  const std::string op =
      "erase the credentials of " + std::to_string(server_ids.size()) + " servers";
  try {
    {
      std::unique_lock<std::shared_mutex> lock(p.credential_mutex);
      if (auto err = p.erase_credentials_locked(server_ids, op)) return err;
    }
    return p.write_events(std::move(events), op);
  } catch (const std::exception& e) {
    return p.fail_exception(op, e);
  }
}

std::vector<std::string> state_store::credential_ids() const {
  auto& p = *impl_;
  std::vector<std::string> ids;
  try {
    std::shared_lock<std::shared_mutex> lock(p.credential_mutex);
    std::unique_ptr<rocksdb::Iterator> it(p.db->NewIterator(rocksdb::ReadOptions(), p.credentials));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ids.push_back(it->key().ToString());
  } catch (const std::exception&) {
    // No error channel in this signature: the ids read so far are the best answer.
  }
  return ids;
}

// -- inventory ------------------------------------------------------------------------------

caf::error state_store::put_inventory(const std::string& server_id, const std::string& json) {
  auto& p = *impl_;
  const std::string op = "store the inventory of server " + server_id;
  try {
    // The latest inventory is collected again after a crash; no fsync needed.
    rocksdb::WriteBatch batch;
    batch.Put(p.inventory, server_id, json);
    auto s = p.write_logged(batch, false);
    if (!s.ok()) return p.fail(s, op);
    return {};
  } catch (const std::exception& e) {
    return p.fail_exception(op, e);
  }
}

caf::expected<std::optional<std::string>> state_store::get_inventory(
    const std::string& server_id) const {
  auto& p = *impl_;
  try {
    std::string value;
    auto s = p.db->Get(rocksdb::ReadOptions(), p.inventory, server_id, &value);
    if (s.IsNotFound()) return std::optional<std::string>{};
    if (!s.ok()) return p.fail(s, "read the inventory of server " + server_id);
    return std::optional<std::string>{std::move(value)};
  } catch (const std::exception& e) {
    return p.fail_exception("read the inventory of server " + server_id, e);
  }
}

// -- events ---------------------------------------------------------------------------------

caf::expected<std::vector<event_record>> state_store::append_events(
    std::vector<event_record> events) {
  try {
    return impl_->write_events(std::move(events), "append events");
  } catch (const std::exception& e) {
    return impl_->fail_exception("append events", e);
  }
}

caf::expected<std::vector<event_record>> state_store::read_events(uint64_t since,
                                                                  size_t limit) const {
  auto& p = *impl_;
  try {
    std::vector<event_record> out;
    if (limit == 0 || since == UINT64_MAX) return out;
    std::unique_ptr<rocksdb::Iterator> it(p.db->NewIterator(rocksdb::ReadOptions(), p.events));
    std::vector<uint8_t> buf;
    for (it->Seek(seq_key(since + 1)); it->Valid() && out.size() < limit; it->Next()) {
      uint64_t seq = 0;
      auto v = it->value();
      buf.assign(reinterpret_cast<const uint8_t*>(v.data()),
                 reinterpret_cast<const uint8_t*>(v.data()) + v.size());
      auto ev = decode_event_record(buf);
      if (!ev) return p.corrupt("an event", ev.error());
      if (!parse_seq_key(it->key(), seq) || seq != ev->seq)
        return make_error(ec::corrupt_data, "event " + std::to_string(ev->seq) + " in database " +
                                                p.dir_text +
                                                " is stored under the wrong key; restore it from "
                                                "a backup");
      out.push_back(std::move(*ev));
    }
    if (!it->status().ok()) return p.fail(it->status(), "read the events");
    return out;
  } catch (const std::exception& e) {
    return p.fail_exception("read the events", e);
  }
}

uint64_t state_store::last_event_seq() const {
  return impl_->last_seq_view.load();
}

uint64_t state_store::first_event_seq() const {
  return impl_->first_seq_view.load();
}

caf::error state_store::trim_events(size_t keep, int64_t min_time_ms) {
  auto& p = *impl_;
  try {
    std::lock_guard<std::mutex> guard(p.write_mutex);
    // Connectivity events are removed by age and by count, trust events by age only, so a
    // flapping fleet can never push the trust history out of the log. Below `trim` every
    // connectivity event is gone and `trust_below` trust events remain; from `trim` to the last
    // seq nothing was removed yet.
    uint64_t new_first = p.first_seq;
    uint64_t trim = std::max(p.connectivity_trim_seq, p.first_seq);
    uint64_t trust_below = p.connectivity_trim_seq >= p.first_seq ? p.trust_events_below : 0;
    std::vector<uint8_t> buf;
    auto decode = [&](const rocksdb::Iterator& it) {
      auto v = it.value();
      buf.assign(reinterpret_cast<const uint8_t*>(v.data()),
                 reinterpret_cast<const uint8_t*>(v.data()) + v.size());
      return decode_event_record(buf);
    };
    rocksdb::WriteBatch batch;
    if (min_time_ms > 0) {
      // Age removes a prefix, so that `first_event_seq` stays meaningful: an old event behind a
      // newer one is kept until everything before it may go.
      std::unique_ptr<rocksdb::Iterator> it(p.db->NewIterator(rocksdb::ReadOptions(), p.events));
      for (it->Seek(seq_key(new_first)); it->Valid(); it->Next()) {
        auto ev = decode(*it);
        if (!ev) return p.corrupt("an event", ev.error());
        if (ev->time_ms >= min_time_ms) {
          new_first = ev->seq;
          break;
        }
        if (ev->seq < trim && !is_connectivity_event(ev->type) && trust_below > 0) --trust_below;
        new_first = ev->seq + 1;
      }
      if (!it->status().ok()) return p.fail(it->status(), "read the events");
      if (new_first > p.first_seq)
        batch.DeleteRange(p.events, seq_key(p.first_seq), seq_key(new_first));
      if (new_first >= trim) {
        trim = new_first;
        trust_below = 0;
      }
    }
    if (trust_below == 0) new_first = std::max(new_first, trim);
    uint64_t kept = trust_below + (p.last_seq + 1 - trim);
    if (kept > keep) {
      // The oldest connectivity events go, one by one, until `keep` events remain or only trust
      // events are left before the newest one.
      uint64_t excess = kept - keep;
      bool trust_seen = trust_below > 0;
      std::unique_ptr<rocksdb::Iterator> it(p.db->NewIterator(rocksdb::ReadOptions(), p.events));
      for (it->Seek(seq_key(trim)); it->Valid() && excess > 0; it->Next()) {
        auto ev = decode(*it);
        if (!ev) return p.corrupt("an event", ev.error());
        if (is_connectivity_event(ev->type)) {
          batch.Delete(p.events, it->key());
          --excess;
          if (!trust_seen) new_first = ev->seq + 1;
        } else {
          if (!trust_seen) new_first = ev->seq;
          trust_seen = true;
          ++trust_below;
        }
        trim = ev->seq + 1;
      }
      if (!it->status().ok()) return p.fail(it->status(), "read the events");
    }
    if (new_first == p.first_seq && trim == p.connectivity_trim_seq &&
        trust_below == p.trust_events_below)
      return {};
    batch.Put(p.meta, key_first_event_seq, std::to_string(new_first));
    batch.Put(p.meta, key_connectivity_trim_seq, std::to_string(trim));
    batch.Put(p.meta, key_trust_events_below, std::to_string(trust_below));
    auto s = p.write_logged(batch, true);
    if (!s.ok()) return p.fail(s, "trim the events");
    p.first_seq = new_first;
    p.connectivity_trim_seq = trim;
    p.trust_events_below = trust_below;
    p.first_seq_view.store(new_first);
    return {};
  } catch (const std::exception& e) {
    return p.fail_exception("trim the events", e);
  }
}

// -- meta -----------------------------------------------------------------------------------

caf::expected<std::optional<std::string>> state_store::get_meta(const std::string& key) const {
  auto& p = *impl_;
  try {
    std::string value;
    auto s = p.db->Get(rocksdb::ReadOptions(), p.meta, key, &value);
    if (s.IsNotFound()) return std::optional<std::string>{};
    if (!s.ok()) return p.fail(s, "read meta key " + key);
    return std::optional<std::string>{std::move(value)};
  } catch (const std::exception& e) {
    return p.fail_exception("read meta key " + key, e);
  }
}

caf::error state_store::put_meta(const std::string& key, const std::string& value) {
  auto& p = *impl_;
  if (key.compare(0, internal_prefix.size(), internal_prefix) == 0)
    return make_error(ec::invalid_argument,
                      "meta key '" + key + "' is reserved: keys starting with '" + internal_prefix +
                          "' belong to the store itself; choose another key");
  try {
    rocksdb::WriteBatch batch;
    batch.Put(p.meta, key, value);
    auto s = p.write_logged(batch, true);
    if (!s.ok()) return p.fail(s, "write meta key " + key);
    return {};
  } catch (const std::exception& e) {
    return p.fail_exception("write meta key " + key, e);
  }
}

caf::expected<std::vector<event_record>> state_store::put_meta(const std::string& key,
                                                               const std::string& value,
                                                               std::vector<event_record> events) {
  auto& p = *impl_;
  if (key.compare(0, internal_prefix.size(), internal_prefix) == 0)
    return make_error(ec::invalid_argument,
                      "meta key '" + key + "' is reserved: keys starting with '" + internal_prefix +
                          "' belong to the store itself; choose another key");
  const std::string op = "write meta key " + key;
  try {
    std::lock_guard<std::mutex> guard(p.write_mutex);
    rocksdb::WriteBatch batch;
    batch.Put(p.meta, key, value);
    auto seq = p.stage_events(batch, events);
    auto s = p.write_logged(batch, true);
    if (!s.ok()) return p.fail(s, op);
    p.commit_seq(seq, true);
    return events;
  } catch (const std::exception& e) {
    return p.fail_exception(op, e);
  }
}

caf::expected<std::optional<std::string>> state_store::master_key_id() const {
  auto& p = *impl_;
  try {
    std::string value;
    auto s = p.db->Get(rocksdb::ReadOptions(), p.meta, key_master_key_id, &value);
    if (s.IsNotFound()) return std::optional<std::string>{};
    if (!s.ok()) return p.fail(s, "read the master key id");
    return std::optional<std::string>{std::move(value)};
  } catch (const std::exception& e) {
    return p.fail_exception("read the master key id", e);
  }
}

caf::error state_store::put_master_key_id(const std::string& id) {
  auto& p = *impl_;
  try {
    rocksdb::WriteBatch batch;
    if (id.empty())
      batch.Delete(p.meta, key_master_key_id);
    else
      batch.Put(p.meta, key_master_key_id, id);
    auto s = p.write_logged(batch, true);
    if (!s.ok()) return p.fail(s, "record the master key id");
    return {};
  } catch (const std::exception& e) {
    return p.fail_exception("record the master key id", e);
  }
}

// -- durability -----------------------------------------------------------------------------

uint64_t state_store::durable_event_seq() const {
  return impl_->durable_seq_view.load();
}

void state_store::on_events_durable(std::function<void(uint64_t)> fn) {
  std::lock_guard<std::mutex> lock(impl_->listener_mutex);
  impl_->durable_listener = std::move(fn);
}

caf::error state_store::sync_wal() {
  auto& p = *impl_;
  try {
    return p.sync_now("fsync the write-ahead log");
  } catch (const std::exception& e) {
    return p.fail_exception("fsync the write-ahead log", e);
  }
}

caf::error state_store::wait_for_wal_sync(std::chrono::milliseconds timeout) {
  auto& p = *impl_;
  std::unique_lock<std::mutex> lock(p.sync_mutex);
  auto mark = p.logged;
  p.synced.wait_for(lock, timeout,
                    [&] { return p.durable >= mark || static_cast<bool>(p.sync_error); });
  if (p.durable >= mark) return {};
  if (p.sync_error) return p.sync_error;
  return make_error(ec::timeout, "the write-ahead log of database " + p.dir_text +
                                     " was not fsynced within " + std::to_string(timeout.count()) +
                                     " ms; check that the disk holding it is responsive");
}

}  // namespace certfleet
