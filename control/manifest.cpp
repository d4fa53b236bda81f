#include "control/manifest.hpp"

#include <algorithm>

#include "common/address.hpp"
#include "control/protocol.hpp"

namespace certfleet::control {
namespace {

using json = nlohmann::json;

/// The first of `keys` that `e` holds as a non-empty string; "" when none. A key holding another
/// type is an error.
caf::expected<std::string> first_string(const json& e, std::initializer_list<const char*> keys,
                                        const std::string& where) {
  for (const char* k : keys) {
    auto it = e.find(k);
    if (it == e.end() || it->is_null()) continue;
    if (!it->is_string())
      return make_error(ec::invalid_argument, where + ": \"" + k + "\" must be a string");
    if (!it->get_ref<const std::string&>().empty()) return it->get<std::string>();
  }
  return std::string{};
}

caf::expected<uint16_t> port_of(const json& e, const std::string& where) {
  auto it = e.find("port");
  if (it == e.end() || it->is_null()) return default_server_port;
  int64_t value = -1;
  if (it->is_number_integer()) {
    value = it->get<int64_t>();
  } else if (it->is_string()) {
    const auto& text = it->get_ref<const std::string&>();
    if (text.empty()) return default_server_port;
    if (text.size() <= 5 &&
        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
      value = std::stoll(text);
  }
  if (value < 1 || value > 65535)
    return make_error(ec::invalid_argument, where + ": \"port\" must be a number from 1 to 65535");
  return static_cast<uint16_t>(value);
}

/// Splits one CSV line; double quotes may enclose a field holding commas ("" is a quote). Spaces
/// and tabs around a field are dropped.
std::vector<std::string> split_csv(std::string_view line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c != '\r') {
      fields.back() += c;
    }
  }
  for (auto& f : fields) {
    auto b = f.find_first_not_of(" \t"), e = f.find_last_not_of(" \t");
    f = b == std::string::npos ? "" : f.substr(b, e - b + 1);
  }
  return fields;
}

caf::expected<std::vector<manifest_entry>> parse_csv(std::string_view text,
                                                     const std::string& source,
                                                     thumbprint_rule rule) {
  std::vector<manifest_entry> out;
  std::vector<std::string> header;
  size_t line_no = 0;
  while (!text.empty()) {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto fields = split_csv(line);
    std::string where = source + ":" + std::to_string(line_no);
    if (header.empty()) {
      header = std::move(fields);
      if (std::find(header.begin(), header.end(), "host") == header.end() &&
          std::find(header.begin(), header.end(), "address") == header.end())
        return make_error(ec::invalid_argument, where +
                                                    ": the header must name the columns, e.g. "
                                                    "host,port,account,expected_thumbprint,name");
      continue;
    }
    if (fields.size() > header.size())
      return make_error(ec::invalid_argument, where + ": " + std::to_string(fields.size()) +
                                                  " fields, but the header names " +
                                                  std::to_string(header.size()) + " columns");
    // The row as the JSON object it spells; an empty field is an absent key.
    json row = json::object();
    for (size_t i = 0; i < fields.size(); ++i)
      if (!fields[i].empty()) row[header[i]] = fields[i];
    auto entry = parse_manifest_entry(row, where, rule);
    if (!entry) return entry.error();
    out.push_back(std::move(*entry));
  }
  return out;
}

}  // namespace

std::string manifest_entry::address() const {
  return normalised_address(host, port);
}

caf::expected<manifest_entry> parse_manifest_entry(const json& e, const std::string& where,
                                                   thumbprint_rule rule) {
  if (!e.is_object()) return make_error(ec::invalid_argument, where + " is not an object");
  manifest_entry entry;
  auto host = first_string(e, {"host", "address"}, where);
  if (!host) return host.error();
  if (host->empty())
    return make_error(ec::invalid_argument, where + " needs \"host\" (or \"address\")");
  if (auto err = validate_host(*host))
    return make_error(ec::invalid_argument, where + ": " + describe(err));
  entry.host = normalise_host(*host);
  auto port = port_of(e, where);
  if (!port) return port.error();
  entry.port = *port;
  auto text = first_string(e, {"sha256", "thumbprint", "expected_thumbprint"}, where);
  if (!text) return text.error();
  if (!text->empty()) {
    auto t = thumbprint::parse(*text);
    if (!t) return make_error(ec::bad_thumbprint, where + ": " + describe(t.error()));
    entry.sha256 = *t;
  } else if (rule == thumbprint_rule::required) {
    return make_error(ec::invalid_argument,
                      where +
                          " needs \"sha256\" (or \"thumbprint\"): the thumbprint verified "
                          "out of band");
  }
  auto account = first_string(e, {"account", "admin_account"}, where);
  if (!account) return account.error();
  if (auto err = check_printable(where + ": account", *account)) return err;
  entry.account = std::move(*account);
  auto name = first_string(e, {"name"}, where);
  if (!name) return name.error();
  if (auto err = check_printable(where + ": name", *name)) return err;
  entry.name = std::move(*name);
  return entry;
}

caf::expected<std::vector<manifest_entry>> parse_manifest(const json& doc,
                                                          const std::string& source,
                                                          thumbprint_rule rule) {
  const json* list = &doc;
  if (doc.is_object()) {
    for (const char* key : {"endpoints", "servers"})
      if (auto it = doc.find(key); it != doc.end()) {
        list = &*it;
        break;
      }
  }
  if (!list->is_array())
    return make_error(ec::invalid_argument,
                      source +
                          " is not a manifest: expected a JSON array, or an object with "
                          "\"endpoints\" or \"servers\", of {host, port, sha256, ...} objects");
  std::vector<manifest_entry> out;
  out.reserve(list->size());
  for (size_t i = 0; i < list->size(); ++i) {
    auto entry = parse_manifest_entry((*list)[i], source + " entry " + std::to_string(i), rule);
    if (!entry) return entry.error();
    out.push_back(std::move(*entry));
  }
  return out;
}

caf::expected<std::vector<manifest_entry>> parse_manifest_text(std::string_view text,
                                                               const std::string& source,
                                                               thumbprint_rule rule) {
  auto doc = json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded()) return make_error(ec::invalid_argument, source + " is not valid JSON");
  return parse_manifest(doc, source, rule);
}

caf::expected<std::vector<manifest_entry>> parse_server_list_text(std::string_view text,
                                                                  const std::string& source,
                                                                  thumbprint_rule rule) {
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (text[first] == '[' || text[first] == '{'))
    return parse_manifest_text(text, source, rule);
  return parse_csv(text, source, rule);
}

}  // namespace certfleet::control
