#include "storage/agent_store.hpp"

#include <atomic>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "common/fs.hpp"
#include "storage/agent_records.hpp"
#include "storage/damage_check.hpp"
#include "storage/rocksdb_logger.hpp"

namespace certfleet {

using storage_detail::decode_manager;
using storage_detail::decode_value_key;
using storage_detail::encode_manager;
using storage_detail::manager_certificate_key;
using storage_detail::manager_key;
using storage_detail::manager_prefix;
using storage_detail::tag_manager;
using storage_detail::tag_meta;
using storage_detail::value_key;
using storage_detail::value_prefix;

struct agent_store::impl {
  std::filesystem::path dir;
  std::unique_ptr<rocksdb::DB> db;

  caf::error fail(const std::string& what, const rocksdb::Status& s) const {
    auto text = s.ToString();
    if (s.IsNoSpace() || text.find("No space left") != std::string::npos)
      return make_error(ec::disk_full, "cannot " + what + " in " + dir.string() +
                                           ": the disk is full; free space there, and writing "
                                           "resumes with the next write");
    return make_error(ec::storage_failure,
                      "cannot " + what + " in the agent database " + dir.string() + ": " + text);
  }

  // Set by a failed write: RocksDB then refuses writes until `Resume()` succeeds, which the next
  // write asks for first (storage/rocksdb_logger.hpp), so writing resumes once space is back.
  std::atomic<bool> write_failed{false};

  caf::error write(rocksdb::WriteBatch& batch, bool sync, const std::string& what) {
    if (write_failed.load()) {
      auto r = db->Resume();
      if (!r.ok()) return fail(what, r.IsBusy() ? rocksdb::Status::NoSpace() : r);
      write_failed.store(false);
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    auto s = db->Write(wo, &batch);
    if (!s.ok()) write_failed.store(true);
    return s.ok() ? caf::error{} : fail(what, s);
  }

  caf::expected<std::optional<std::string>> get(const std::string& key,
                                                const std::string& what) const {
    std::string value;
    auto s = db->Get(rocksdb::ReadOptions{}, key, &value);
    if (s.IsNotFound()) return std::optional<std::string>{};
    if (!s.ok()) return fail(what, s);
    return std::optional<std::string>{std::move(value)};
  }

  // Calls fn(key, value) for every key starting with `prefix`.
  template <class F>
  caf::error scan(const std::string& prefix, const std::string& what, F&& fn) const {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions{}));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
      fn(it->key(), it->value());
    return it->status().ok() ? caf::error{} : fail(what, it->status());
  }
};

agent_store::agent_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
agent_store::~agent_store() = default;

caf::expected<std::unique_ptr<agent_store>> agent_store::open(const std::filesystem::path& dir,
                                                              bool read_only) {
  auto p = std::make_unique<impl>();
  p->dir = dir;
  rocksdb::Options o;
  o.create_if_missing = !read_only;
  o.paranoid_checks = true;
  // The fleet needs its descriptors for listening sockets and connections.
  o.max_open_files = 64;
  // RocksDB's own LOG file aborts the process once a disk is full (storage/rocksdb_logger.hpp).
  o.info_log = storage_detail::make_info_logger();
  o.listeners.push_back(storage_detail::make_manual_resume_listener());
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (read_only) {
    if (!std::filesystem::exists(dir))
      return make_error(ec::not_found, "the agent database " + dir.string() +
                                           " does not exist; start the agent once to create it");
    s = rocksdb::DB::OpenForReadOnly(o, dir.string(), &raw);
  } else {
    if (auto err = ensure_directory(dir, 0700)) return err;
    // Nothing may be written to a damaged database, not even by RocksDB's recovery.
    if (auto err = storage_detail::check_before_open(o, dir, "the agent database")) return err;
    s = rocksdb::DB::Open(o, dir.string(), &raw);
  }
  if (!s.ok()) {
    auto text = s.ToString();
    if (text.find("/LOCK") != std::string::npos || text.find("lock") != std::string::npos)
      return make_error(ec::storage_failure,
                        "the agent database " + dir.string() +
                            " is in use by another process (is the agent running?); stop it, or "
                            "use a command that goes through its control socket");
    if (s.IsCorruption()) return storage_detail::describe_damage(s, dir, "the agent database");
    return p->fail("open the database", s);
  }
  p->db.reset(raw);
  return std::unique_ptr<agent_store>(new agent_store(std::move(p)));
}

caf::error agent_store::put_manager(uint32_t endpoint, const manager_record& r) {
  rocksdb::WriteBatch batch;
  batch.Put(manager_key(endpoint, r.manager_thumbprint), encode_manager(r));
  if (!r.certificate_der.empty())
    batch.Put(manager_certificate_key(endpoint, r.manager_thumbprint),
              rocksdb::Slice(reinterpret_cast<const char*>(r.certificate_der.data()),
                             r.certificate_der.size()));
  return impl_->write(batch, true, "store a registered manager");
}

caf::expected<bool> agent_store::remove_manager(uint32_t endpoint, const thumbprint& t) {
  auto key = manager_key(endpoint, t);
  auto existing = impl_->get(key, "look up a manager");
  if (!existing) return existing.error();
  if (!*existing) return false;
  rocksdb::WriteBatch batch;
  batch.Delete(key);
  batch.Delete(manager_certificate_key(endpoint, t));
  if (auto err = impl_->write(batch, true, "revoke a manager")) return err;
  return true;
}

caf::expected<std::optional<std::vector<uint8_t>>> agent_store::manager_certificate(
    uint32_t endpoint, const thumbprint& t) const {
  auto v = impl_->get(manager_certificate_key(endpoint, t), "read a manager's certificate");
  if (!v) return v.error();
  if (!*v) return std::optional<std::vector<uint8_t>>{};
  return std::optional<std::vector<uint8_t>>{std::vector<uint8_t>((*v)->begin(), (*v)->end())};
}

caf::expected<std::vector<manager_record>> agent_store::managers(uint32_t endpoint) const {
  std::vector<manager_record> out;
  auto err = impl_->scan(manager_prefix(endpoint), "list managers",
                         [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
                           uint32_t ep = 0;
                           manager_record r;
                           if (decode_manager(k.ToStringView(), v.ToStringView(), ep, r))
                             out.push_back(std::move(r));
                         });
  if (err) return err;
  return out;
}

caf::error agent_store::for_each_manager(
    const std::function<void(uint32_t, const manager_record&)>& fn) const {
  return impl_->scan(std::string(1, tag_manager), "list managers",
                     [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
                       uint32_t ep = 0;
                       manager_record r;
                       if (decode_manager(k.ToStringView(), v.ToStringView(), ep, r)) fn(ep, r);
                     });
}

caf::error agent_store::put_values(const std::vector<endpoint_value>& values, bool sync) {
  rocksdb::WriteBatch batch;
  for (const auto& v : values) batch.Put(value_key(v.endpoint, v.name), v.value);
  return impl_->write(batch, sync, "store endpoint state");
}

caf::expected<std::optional<std::string>> agent_store::get_value(uint32_t endpoint,
                                                                 const std::string& name) const {
  return impl_->get(value_key(endpoint, name), "read endpoint state '" + name + "'");
}

caf::error agent_store::for_each_value(
    const std::string& name, const std::function<void(uint32_t, const std::string&)>& fn) const {
  auto prefix = value_prefix(name);
  return impl_->scan(prefix, "read endpoint state '" + name + "'",
                     [&](const rocksdb::Slice& k, const rocksdb::Slice& v) {
                       if (auto endpoint = decode_value_key(k.ToStringView(), prefix))
                         fn(*endpoint, v.ToString());
                     });
}

caf::expected<std::optional<std::string>> agent_store::get_meta(const std::string& key) const {
  return impl_->get(std::string(1, tag_meta) + key, "read '" + key + "'");
}

caf::error agent_store::put_meta(const std::string& key, const std::string& value) {
  rocksdb::WriteBatch batch;
  batch.Put(std::string(1, tag_meta) + key, value);
  return impl_->write(batch, true, "store '" + key + "'");
}

const std::filesystem::path& agent_store::dir() const {
  return impl_->dir;
}

}  // namespace certfleet
