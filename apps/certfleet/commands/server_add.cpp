// `certfleet server add HOST[:PORT] --account USER ...` and `server add --from FILE`: register
// servers; their credentials are sealed until the registration succeeds, then deleted.
#include <algorithm>
#include <initializer_list>
#include <iostream>
#include <sstream>

#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"
#include "common/fs.hpp"

namespace certfleet::cli {
namespace {

struct server_add_options {
  std::string address;
  std::string account;
  password_source password;
  std::string expect_thumbprint;
  std::string name;
  std::string from_file;
};

/// Splits one CSV line; double quotes may enclose a field holding commas ("" is a quote).
std::vector<std::string> split_csv(const std::string& line) {
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

/// One server of a bulk file, as the daemon's server.add args (without the password).
caf::expected<json> bulk_entry(const std::string& where, std::string host, const json& port,
                               std::string account, const std::string& expected,
                               const std::string& name, const std::string& default_account) {
  if (host.empty()) return make_error(ec::invalid_argument, where + ": host is empty");
  uint16_t p = control::default_server_port;
  if (port.is_number_integer()) {
    auto v = port.get<int64_t>();
    if (v < 1 || v > 65535)
      return make_error(ec::invalid_argument, where + ": port must be between 1 and 65535");
    p = static_cast<uint16_t>(v);
  } else if (port.is_string() && !port.get<std::string>().empty()) {
    std::string h;
    if (auto err = control::parse_address("h:" + port.get<std::string>(), h, p))
      return make_error(ec::invalid_argument, where + ": port must be between 1 and 65535");
  } else if (!port.is_null() && !(port.is_string() && port.get<std::string>().empty())) {
    return make_error(ec::invalid_argument, where + ": port must be a number");
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (account.empty()) account = default_account;
  if (account.empty())
    return make_error(ec::invalid_argument,
                      where + ": no account; fill the account column or pass --account USER");
  json entry{{"host", host}, {"port", p}, {"account", account}};
  if (!name.empty()) entry["name"] = name;
  if (!expected.empty()) {
    auto t = normalised_thumbprint(expected, where + ": expected_thumbprint");
    if (!t) return t.error();
    entry["expected_thumbprint"] = *t;
  }
  return entry;
}

caf::expected<std::vector<json>> load_bulk_file(const std::string& file,
                                                const std::string& default_account) {
  auto bytes = read_file(file);
  if (!bytes) return bytes.error();
  std::string text(bytes->begin(), bytes->end());
  std::vector<json> out;
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (text[first] == '[' || text[first] == '{')) {
    auto doc = json::parse(text, nullptr, false);
    if (doc.is_object() && doc.contains("servers")) doc = doc["servers"];
    // An agent fleet manifest (docs/agent.md) is accepted as it is: its thumbprints were published
    // out of band, so they become the expected thumbprints.
    if (doc.is_object() && doc.contains("endpoints")) doc = doc["endpoints"];
    if (doc.is_discarded() || !doc.is_array())
      return make_error(ec::invalid_argument, file +
                                                  " is not a JSON array of {host, port, account, "
                                                  "expected_thumbprint, name} objects");
    for (size_t i = 0; i < doc.size(); ++i) {
      const auto& e = doc[i];
      std::string where = file + " entry " + std::to_string(i);
      if (!e.is_object()) return make_error(ec::invalid_argument, where + " is not an object");
      auto get = [&](const char* k) { return str(e, k); };
      auto first_of = [&](std::initializer_list<const char*> keys) {
        for (auto k : keys)
          if (!get(k).empty()) return get(k);
        return std::string{};
      };
      auto entry = bulk_entry(where, first_of({"host", "address"}), e.value("port", json()),
                              first_of({"account", "admin_account"}),
                              first_of({"expected_thumbprint", "thumbprint", "sha256"}),
                              get("name"), default_account);
      if (!entry) return entry.error();
      out.push_back(std::move(*entry));
    }
    return out;
  }
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> header;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto fields = split_csv(line);
    if (header.empty()) {
      header = fields;
      if (std::find(header.begin(), header.end(), "host") == header.end())
        return make_error(ec::invalid_argument, file +
                                                    ":1: the header must name the columns, e.g. "
                                                    "host,port,account,expected_thumbprint,name");
      continue;
    }
    auto col = [&](const char* name) -> std::string {
      for (size_t i = 0; i < header.size() && i < fields.size(); ++i)
        if (header[i] == name) return fields[i];
      return "";
    };
    auto port = col("port");
    auto entry = bulk_entry(file + ":" + std::to_string(line_no), col("host"),
                            port.empty() ? json() : json(port), col("account"),
                            col("expected_thumbprint"), col("name"), default_account);
    if (!entry) return entry.error();
    out.push_back(std::move(*entry));
  }
  if (out.empty()) return make_error(ec::invalid_argument, file + " lists no servers");
  return out;
}

int run_add_bulk(const context& ctx, const server_add_options& o) {
  auto entries = load_bulk_file(o.from_file, o.account);
  if (!entries) return report(entries.error());
  auto password = o.password.read("Password for the servers in " + o.from_file + ": ");
  if (!password) return report(password.error());
  // A JSON string escapes at most 6 bytes per password byte.
  size_t extra = 16 + password->size() * 6;
  return with_client(ctx, [&](control_client& c) -> int {
    json all = json::array();
    int rc = exit_ok;
    size_t added = 0, failed = 0;
    for (auto& batch : batches(*entries, extra)) {
      for (auto& e : batch) e["password"] = as_string(*password);
      auto r = c.call("server.add_bulk", {{"servers", batch}});
      control::scrub_passwords(batch);
      if (!r) return report(r.error());
      for (auto& res : (*r)["results"]) {
        auto index = res["index"].get<size_t>();
        const auto& entry = batch[index];
        auto address = control::format_address(entry["host"].get<std::string>(),
                                               entry["port"].get<uint16_t>());
        if (res["ok"].get<bool>()) {
          ++added;
          if (!ctx.json) std::cout << "added " << one_line(res["server"]) << '\n';
          all.push_back(res["server"]);
        } else {
          ++failed;
          auto err = control::error_from_json(res["error"]);
          if (rc == exit_ok) rc = exit_code_for(err);
          std::cerr << "certfleet: " << address << ": " << describe(err) << '\n';
          all.push_back({{"address", address}, {"error", res["error"]}});
        }
      }
    }
    if (ctx.json)
      std::cout << all.dump(2) << '\n';
    else
      std::cout << added << " added, " << failed << " failed\n";
    return rc;
  });
}

int run_server_add(const context& ctx, const server_add_options& o) {
  if (!o.from_file.empty()) {
    if (!o.address.empty() || !o.expect_thumbprint.empty() || !o.name.empty())
      return report(make_error(ec::invalid_argument,
                               "--from FILE takes hosts, names and thumbprints from the file; "
                               "do not also give HOST, --name or --expect-thumbprint"));
    return run_add_bulk(ctx, o);
  }
  if (o.address.empty())
    return report(
        make_error(ec::invalid_argument, "give HOST[:PORT] (or --from FILE for many servers)"));
  if (o.account.empty())
    return report(make_error(ec::invalid_argument,
                             "--account USER is required: an account with the Backup "
                             "Administrator role on the server"));
  std::string host;
  uint16_t port = 0;
  if (auto err = control::parse_address(o.address, host, port)) return report(err);
  json args{{"host", host}, {"port", port}, {"account", o.account}};
  if (!o.name.empty()) args["name"] = o.name;
  if (!o.expect_thumbprint.empty()) {
    auto t = normalised_thumbprint(o.expect_thumbprint, "--expect-thumbprint");
    if (!t) return report(t.error());
    args["expected_thumbprint"] = *t;
  }
  auto password = o.password.read("Password for " + o.account + "@" +
                                  control::format_address(host, port) + ": ");
  if (!password) return report(password.error());
  return with_client(ctx, [&](control_client& c) -> int {
    args["password"] = as_string(*password);
    auto r = c.call("server.add", args);
    control::scrub_passwords(args);
    if (!r) return report(r.error());
    return print_result(
        ctx, *r,
        "added " + one_line(*r) + "\nFollow it with 'certfleet server show " + str(*r, "id") + "'");
  });
}

}  // namespace

void add_server_add_command(CLI::App& server, context& ctx) {
  auto o = std::make_shared<server_add_options>();
  auto* cmd = add_command(server, "add",
                          "Register a server (or many with --from FILE); its credentials are "
                          "sealed until the registration succeeds, then deleted",
                          ctx, [&ctx, o] { return run_server_add(ctx, *o); });
  cmd->add_option("HOST[:PORT]", o->address, "Address; [IPv6]:PORT; default port 9401");
  cmd->add_option("--account", o->account, "Account with the Backup Administrator role");
  o->password.add_flags(*cmd);
  // An empty value (a script's unset variable) must not silently drop the pin.
  cmd->add_option("--expect-thumbprint", o->expect_thumbprint,
                  "SHA-256 thumbprint verified out of band: trusted at once when it matches")
      ->check(CLI::Validator(
          [](std::string& v) {
            return v.find_first_not_of(" \t") == std::string::npos
                       ? std::string{"is empty: give the thumbprint, or leave the option out"}
                       : std::string{};
          },
          "THUMBPRINT"));
  cmd->add_option("--name", o->name, "Display name (default HOST:PORT)");
  cmd->add_option("--from", o->from_file,
                  "CSV (header host,port,account,expected_thumbprint,name) or JSON array");
}

}  // namespace certfleet::cli
