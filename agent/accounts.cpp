#include "agent/accounts.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "crypto/password_hash.hpp"

namespace certfleet::agent {

const char* to_string(role r) {
  return r == role::administrator ? "administrator" : "viewer";
}

const char* display_name(role r) {
  return r == role::administrator ? "Backup Administrator" : "Backup Viewer";
}

caf::expected<role> parse_role(const std::string& text) {
  if (text == "administrator") return role::administrator;
  if (text == "viewer") return role::viewer;
  return make_error(ec::invalid_argument,
                    "unknown role '" + text + "'; use 'administrator' or 'viewer'");
}

caf::expected<account_book> account_book::load(const std::filesystem::path& path) {
  if (auto err = check_private_file(path)) return err;
  auto bytes = read_file(path);
  if (!bytes) return bytes.error();
  return from_json(std::string(bytes->begin(), bytes->end()), path.string());
}

caf::expected<account_book> account_book::from_json(const std::string& text,
                                                    const std::string& origin) {
  auto bad = [&](const std::string& why) {
    return make_error(ec::corrupt_data, "the accounts file " + origin + " is invalid: " + why +
                                            "; fix it or recreate it with "
                                            "'certfleet-agent accounts add'");
  };
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return bad("not a JSON object");
  if (!doc.contains("version") || doc["version"] != 1) return bad("missing or unknown version");
  if (!doc.contains("accounts") || !doc["accounts"].is_array())
    return bad("'accounts' is not a list");
  account_book book;
  for (const auto& entry : doc["accounts"]) {
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
        !entry.contains("role") || !entry["role"].is_string() || !entry.contains("password_hash") ||
        !entry["password_hash"].is_string())
      return bad("an account lacks name, role or password_hash");
    auto r = parse_role(entry["role"].get<std::string>());
    if (!r) return bad(describe(r.error()));
    account a{entry["name"].get<std::string>(), *r, entry["password_hash"].get<std::string>()};
    if (book.find(a.name)) return bad("account '" + a.name + "' appears twice");
    if (auto err = book.put(std::move(a))) return bad(describe(err));
  }
  return book;
}

std::string account_book::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& a : accounts_)
    list.push_back(
        {{"name", a.name}, {"role", to_string(a.role)}, {"password_hash", a.password_hash}});
  nlohmann::json doc = {{"version", 1}, {"accounts", std::move(list)}};
  return doc.dump(2) + "\n";
}

caf::error account_book::save(const std::filesystem::path& path) const {
  auto text = to_json();
  return write_file_atomically(path, text.data(), text.size(), 0600);
}

caf::error account_book::put(account a) {
  if (a.name.empty() || a.name.size() > 256)
    return make_error(ec::invalid_argument, "an account name must be between 1 and 256 bytes long");
  auto it = std::find_if(accounts_.begin(), accounts_.end(),
                         [&](const account& x) { return x.name == a.name; });
  if (it != accounts_.end())
    *it = std::move(a);
  else
    accounts_.push_back(std::move(a));
  return {};
}

caf::error account_book::remove(const std::string& name) {
  auto it = std::find_if(accounts_.begin(), accounts_.end(),
                         [&](const account& x) { return x.name == name; });
  if (it == accounts_.end())
    return make_error(ec::not_found, "there is no account named '" + name +
                                         "'; list them with 'certfleet-agent accounts list'");
  accounts_.erase(it);
  return {};
}

const account* account_book::find(const std::string& name) const {
  auto it = std::find_if(accounts_.begin(), accounts_.end(),
                         [&](const account& x) { return x.name == name; });
  return it == accounts_.end() ? nullptr : &*it;
}

caf::expected<const account*> account_book::check_password(const std::string& name,
                                                           const secret_bytes& password) const {
  const account* acc = find(name);
  const account* hashed = acc ? acc : (accounts_.empty() ? nullptr : &accounts_.front());
  if (!hashed) return static_cast<const account*>(nullptr);
  ++hashes_computed_;
  auto ok = verify_password(password, hashed->password_hash);
  if (!ok) {
    // The decoy's hash being corrupt is not this caller's concern: the name is unknown.
    if (!acc) return static_cast<const account*>(nullptr);
    return ok.error();
  }
  return *ok && acc ? acc : nullptr;
}

}  // namespace certfleet::agent
