// `certfleet status`, `certfleet server ...` and `certfleet events`: the client side of the
// daemon's control socket (docs/control-api.md).
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <initializer_list>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "apps/certfleet/commands.hpp"
#include "apps/cli/output.hpp"
#include "common/fs.hpp"
#include "config/state_layout.hpp"
#include "control/control_client.hpp"
#include "crypto/secret.hpp"
#include "crypto/thumbprint.hpp"

namespace certfleet::cli {
namespace {

using json = nlohmann::json;
using control::control_client;

/// Requests stay under the daemon's line limit with room for the envelope.
constexpr size_t batch_bytes = control::max_request_line - 4096;

struct server_options {
  std::string socket;
  std::string id;
  std::string address;
  std::string account;
  bool password_stdin = false;
  std::string password_file;
  std::string expect_thumbprint;
  std::string name;
  std::string from_file;
  std::string thumbprint_text;
  std::string manifest_file;
  uint64_t since = 0;
  bool follow = false;
  std::string type;
  std::string server;
};

server_options& opts() {
  static server_options o;
  return o;
}

caf::expected<std::string> socket_path(const context& ctx) {
  if (!opts().socket.empty()) return opts().socket;
  auto cfg = ctx.load();
  if (!cfg) return cfg.error();
  if (!cfg->daemon.control_socket.empty()) return cfg->daemon.control_socket;
  return state_layout{cfg->state_dir}.control_socket().string();
}

/// Connects, runs `body`, and turns a failed connect into exit 7 ("not running") or 8.
int with_client(const context& ctx, const std::function<int(control_client&)>& body) {
  auto path = socket_path(ctx);
  if (!path) return report(path.error());
  control::connect_failure why;
  auto client = control_client::connect(*path, &why);
  if (!client) {
    report(client.error());
    if (why == control::connect_failure::not_running) return exit_unreachable;
    if (why == control::connect_failure::permission_denied) return exit_refused;
    return exit_code_for(client.error());
  }
  return body(*client);
}

caf::expected<secret_bytes> read_password_stdin(const std::string& prompt) {
  bool tty = ::isatty(STDIN_FILENO);
  termios saved{};
  if (tty) {
    std::cerr << prompt << std::flush;
    ::tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  secret_bytes pw;
  char c;
  // Byte by byte, so the password never passes through a std::string or iostream buffer.
  while (::read(STDIN_FILENO, &c, 1) == 1 && c != '\n') pw.push_back(static_cast<uint8_t>(c));
  c = 0;
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    std::cerr << '\n';
  }
  if (!pw.empty() && pw.back() == '\r') pw.pop_back();
  if (pw.empty())
    return make_error(ec::invalid_argument,
                      "no password on standard input; pipe it in (printf '%s\\n' \"$PW\" | "
                      "certfleet ...) or use --password-file");
  return pw;
}

caf::expected<secret_bytes> read_password_file(const std::string& file) {
  if (auto err = check_private_file(file)) return err;
  auto bytes = read_file(file);
  if (!bytes) return bytes.error();
  secret_bytes pw(bytes->begin(), bytes->end());
  std::fill(bytes->begin(), bytes->end(), uint8_t{0});
  while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
  if (pw.empty()) return make_error(ec::invalid_argument, "password file " + file + " is empty");
  return pw;
}

/// The password from --password-stdin or --password-file (exactly one of them).
caf::expected<secret_bytes> read_password(const std::string& prompt) {
  const auto& o = opts();
  if (o.password_stdin == !o.password_file.empty())
    return make_error(ec::invalid_argument,
                      "give the password with exactly one of --password-stdin or "
                      "--password-file FILE (mode 0600)");
  return o.password_stdin ? read_password_stdin(prompt) : read_password_file(o.password_file);
}

std::string as_string(const secret_bytes& s) {
  return std::string(reinterpret_cast<const char*>(s.data()), s.size());
}

/// Validates a thumbprint on the client so a typo fails with exit 2 before reaching the daemon.
caf::expected<std::string> normalised_thumbprint(const std::string& text, const std::string& what) {
  auto t = thumbprint::parse(text);
  if (!t) return make_error(ec::bad_thumbprint, what + ": " + describe(t.error()));
  return t->to_string();
}

std::string relative_time(int64_t ms) {
  if (ms <= 0) return "never";
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  auto s = std::max<int64_t>(0, (now - ms) / 1000);
  if (s < 60) return std::to_string(s) + "s ago";
  if (s < 3600) return std::to_string(s / 60) + "m ago";
  if (s < 86400) return std::to_string(s / 3600) + "h ago";
  return std::to_string(s / 86400) + "d ago";
}

std::string utc_time(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[40];
  std::snprintf(out, sizeof(out), "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      if (i + 1 == r.size())
        std::cout << r[i];
      else
        std::cout << std::left << std::setw(static_cast<int>(width[i] + 2)) << r[i];
    }
    std::cout << '\n';
  }
}

std::string thumbprint_prefix(const json& server) {
  auto t = str(server, "pinned_thumbprint");
  if (t.empty()) t = str(server, "presented_thumbprint");
  return t.empty() ? "-" : t.substr(0, 16);
}

int print_result(const context& ctx, const json& result, const std::string& text) {
  if (ctx.json)
    std::cout << result.dump(2) << '\n';
  else
    std::cout << text << '\n';
  return exit_ok;
}

std::string one_line(const json& server) {
  return str(server, "id") + " (" + str(server, "name") + ", " + str(server, "address") +
         "): " + str(server, "state");
}

// --- status, list, show -------------------------------------------------------------------

int run_status(const context& ctx) {
  return with_client(ctx, [&](control_client& c) -> int {
    auto s = c.call("status", json::object());
    if (!s) return report(s.error());
    if (ctx.json) return print_result(ctx, *s, "");
    std::cout << "certfleetd: " << num(*s, "servers") << " servers, " << num(*s, "connected")
              << " connected\n";
    std::vector<std::vector<std::string>> rows;
    for (auto& [state, count] : (*s)["per_state"].items())
      rows.push_back({"  " + state, std::to_string(count.get<int64_t>())});
    print_table(rows);
    std::cout << "Handshakes: " << num(*s, "handshakes") << " completed ("
              << num(*s, "resumed_handshakes") << " resumed), " << num(*s, "handshake_failures")
              << " failed; collections: " << num(*s, "collections") << '\n';
    auto latency = [&](const char* kind) {
      const auto& l = (*s)["latency"][kind];
      if (!l.is_object() || l.value("count", 0) == 0) return std::string("none yet");
      std::ostringstream o;
      o << std::fixed << std::setprecision(1) << "p50 " << l.value("p50_ms", 0.0) << " ms, p99 "
        << l.value("p99_ms", 0.0) << " ms, max " << l.value("max_ms", 0.0) << " ms";
      return o.str();
    };
    std::cout << "Latency: handshake " << latency("handshake") << "; collection "
              << latency("collection") << "\nLast event: #" << num(*s, "last_event_seq")
              << " (certfleet events --since N to read them)\n"
              << "Manager certificate: SHA-256 " << str(*s, "manager_thumbprint")
              << ", valid until " << str(*s, "manager_not_after") << '\n';
    const auto& errors = (*s)["last_errors"];
    if (errors.is_array() && !errors.empty()) {
      std::cout << "Last errors (newest first):\n";
      for (const auto& e : errors) std::cout << "  " << e.get<std::string>() << '\n';
    }
    return exit_ok;
  });
}

int run_list(const context& ctx) {
  return with_client(ctx, [&](control_client& c) -> int {
    auto r = c.call("server.list", json::object());
    if (!r) return report(r.error());
    const auto& servers = (*r)["servers"];
    if (ctx.json) return print_result(ctx, servers, "");
    if (servers.empty()) {
      std::cout << "No servers; add one with 'certfleet server add HOST --account USER "
                   "--password-stdin'\n";
      return exit_ok;
    }
    std::vector<std::vector<std::string>> rows{
        {"ID", "NAME", "ADDRESS", "STATE", "THUMBPRINT", "LAST SEEN", "LAST COLLECTION"}};
    for (const auto& s : servers)
      rows.push_back({str(s, "id"), str(s, "name"), str(s, "address"), str(s, "state"),
                      thumbprint_prefix(s), relative_time(num(s, "last_seen_ms")),
                      relative_time(num(s, "last_collection_ms"))});
    print_table(rows);
    return exit_ok;
  });
}

int run_show(const context& ctx) {
  return with_client(ctx, [&](control_client& c) -> int {
    auto r = c.call("server.show", {{"id", opts().id}});
    if (!r) return report(r.error());
    if (ctx.json) return print_result(ctx, *r, "");
    auto or_dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
    std::vector<std::vector<std::string>> rows{
        {"ID:", str(*r, "id")},
        {"Name:", str(*r, "name")},
        {"Address:", str(*r, "address")},
        {"State:", str(*r, "state")},
        {"Connected:", (*r)["connected"].get<bool>() ? "yes" : "no"},
        {"Account:", or_dash(str(*r, "account"))},
        {"Credentials retained:", (*r)["credentials_retained"].get<bool>() ? "yes (sealed)" : "no"},
        {"Expected thumbprint:", or_dash(str(*r, "expected_thumbprint"))},
        {"Presented thumbprint:", or_dash(str(*r, "presented_thumbprint"))},
        {"Pinned thumbprint:", or_dash(str(*r, "pinned_thumbprint"))},
        {"Validated by:", or_dash(str(*r, "validated_by"))},
        {"Remote id:", or_dash(str(*r, "remote_id"))},
        {"Last error:", or_dash(str(*r, "last_error"))},
        {"Failed attempts:", std::to_string(num(*r, "failed_attempts"))},
        {"Last seen:", relative_time(num(*r, "last_seen_ms"))},
        {"Last collection:", relative_time(num(*r, "last_collection_ms"))},
    };
    print_table(rows);
    const auto& inv = (*r)["inventory"];
    std::cout << "Inventory:" << (inv.is_null() ? " none collected yet\n" : "\n");
    if (!inv.is_null()) std::cout << inv.dump(2) << '\n';
    return exit_ok;
  });
}

// --- add ----------------------------------------------------------------------------------

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
                               const std::string& name) {
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
  if (account.empty()) account = opts().account;
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

caf::expected<std::vector<json>> load_bulk_file(const std::string& file) {
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
      auto entry =
          bulk_entry(where, first_of({"host", "address"}), e.value("port", json()),
                     first_of({"account", "admin_account"}),
                     first_of({"expected_thumbprint", "thumbprint", "sha256"}), get("name"));
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
                            col("expected_thumbprint"), col("name"));
    if (!entry) return entry.error();
    out.push_back(std::move(*entry));
  }
  if (out.empty()) return make_error(ec::invalid_argument, file + " lists no servers");
  return out;
}

/// Splits `items` into batches whose serialised size stays under the daemon's line limit.
std::vector<json> batches(const std::vector<json>& items, size_t per_item_extra) {
  std::vector<json> out;
  json current = json::array();
  size_t size = 0;
  for (const auto& item : items) {
    size_t n = item.dump().size() + per_item_extra + 1;
    if (!current.empty() && size + n > batch_bytes) {
      out.push_back(std::move(current));
      current = json::array();
      size = 0;
    }
    current.push_back(item);
    size += n;
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

int run_add_bulk(const context& ctx) {
  auto entries = load_bulk_file(opts().from_file);
  if (!entries) return report(entries.error());
  auto password = read_password("Password for the servers in " + opts().from_file + ": ");
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

int run_add(const context& ctx) {
  const auto& o = opts();
  if (!o.from_file.empty()) {
    if (!o.address.empty() || !o.expect_thumbprint.empty() || !o.name.empty())
      return report(make_error(ec::invalid_argument,
                               "--from FILE takes hosts, names and thumbprints from the file; "
                               "do not also give HOST, --name or --expect-thumbprint"));
    return run_add_bulk(ctx);
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
  auto password =
      read_password("Password for " + o.account + "@" + control::format_address(host, port) + ": ");
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

// --- trust and friends --------------------------------------------------------------------

caf::expected<std::vector<json>> load_manifest(const std::string& file) {
  auto bytes = read_file(file);
  if (!bytes) return bytes.error();
  auto doc = json::parse(bytes->begin(), bytes->end(), nullptr, false);
  if (!doc.is_discarded() && doc.is_object() && doc.contains("endpoints")) doc = doc["endpoints"];
  if (doc.is_discarded() || !doc.is_array())
    return make_error(ec::invalid_argument,
                      file +
                          " is not a fleet manifest: expected a JSON array, or an object with "
                          "\"endpoints\", of {address, port, sha256} entries");
  std::vector<json> out;
  for (size_t i = 0; i < doc.size(); ++i) {
    const auto& e = doc[i];
    std::string where = file + " entry " + std::to_string(i);
    if (!e.is_object()) return make_error(ec::invalid_argument, where + " is not an object");
    auto address = str(e, "address").empty() ? str(e, "host") : str(e, "address");
    auto text = str(e, "sha256").empty() ? str(e, "thumbprint") : str(e, "sha256");
    auto port = e.value("port", json());
    if (address.empty() || text.empty() || !port.is_number_integer())
      return make_error(ec::invalid_argument,
                        where +
                            " needs \"address\", \"port\" (a number) and \"sha256\" (or "
                            "\"thumbprint\")");
    auto t = normalised_thumbprint(text, where);
    if (!t) return t.error();
    out.push_back({{"address", address}, {"port", port}, {"thumbprint", *t}});
  }
  return out;
}

int run_trust_manifest(const context& ctx) {
  auto entries = load_manifest(opts().manifest_file);
  if (!entries) return report(entries.error());
  return with_client(ctx, [&](control_client& c) -> int {
    json results = json::array(), unmatched = json::array();
    size_t trusted = 0, already = 0, skipped = 0, failed = 0;
    for (const auto& batch : batches(*entries, 0)) {
      auto r = c.call("server.trust_manifest", {{"entries", batch}});
      if (!r) return report(r.error());
      for (const auto& res : (*r)["results"]) {
        results.push_back(res);
        if (!ctx.json) {
          std::cout << str(res, "id") << " " << str(res, "address") << ": " << str(res, "outcome");
          if (!str(res, "message").empty()) std::cout << " (" << str(res, "message") << ")";
          if (res.contains("error")) std::cout << " (" << str(res["error"], "message") << ")";
          std::cout << '\n';
        }
      }
      trusted += (*r)["trusted"].get<size_t>();
      already += (*r)["already_trusted"].get<size_t>();
      skipped += (*r)["skipped"].get<size_t>();
      failed += (*r)["failed"].get<size_t>();
      for (const auto& u : (*r)["unmatched_entries"]) unmatched.push_back(u);
    }
    size_t mismatched = 0;
    for (const auto& res : results) mismatched += str(res, "outcome") == "mismatch";
    if (ctx.json) {
      std::cout << json{{"results", results},         {"trusted", trusted},
                        {"already_trusted", already}, {"skipped", skipped},
                        {"failed", failed},           {"unmatched_entries", unmatched}}
                       .dump(2)
                << '\n';
    } else {
      std::cout << trusted << " trusted, " << already << " already trusted, " << skipped
                << " skipped, " << failed << " failed; " << unmatched.size()
                << " manifest entries match no server\n";
    }
    // A thumbprint that contradicts the manifest is a security finding, not a detail.
    return failed || mismatched ? exit_refused : exit_ok;
  });
}

int run_trust(const context& ctx) {
  const auto& o = opts();
  if (!o.manifest_file.empty()) {
    if (!o.id.empty() || !o.thumbprint_text.empty())
      return report(make_error(ec::invalid_argument,
                               "--all-matching-manifest takes servers and thumbprints from the "
                               "manifest; do not also give ID or --thumbprint"));
    return run_trust_manifest(ctx);
  }
  if (o.id.empty() || o.thumbprint_text.empty())
    return report(make_error(ec::invalid_argument,
                             "give ID and --thumbprint SHA256 (quote the thumbprint the server "
                             "presented: see 'certfleet server show ID'), or "
                             "--all-matching-manifest FILE"));
  auto t = normalised_thumbprint(o.thumbprint_text, "--thumbprint");
  if (!t) return report(t.error());
  return with_client(ctx, [&](control_client& c) -> int {
    auto r = c.call("server.trust", {{"id", o.id}, {"thumbprint", *t}});
    if (!r) return report(r.error());
    return print_result(ctx, *r, "trusted " + one_line(*r));
  });
}

int run_simple(const context& ctx, const std::string& op, const std::string& verb) {
  return with_client(ctx, [&](control_client& c) -> int {
    auto r = c.call(op, {{"id", opts().id}});
    if (!r) return report(r.error());
    return print_result(ctx, *r,
                        r->contains("state") ? verb + " " + one_line(*r) : verb + " " + opts().id);
  });
}

int run_credentials(const context& ctx) {
  const auto& o = opts();
  if (o.account.empty())
    return report(make_error(ec::invalid_argument, "--account USER is required"));
  auto password = read_password("Password for " + o.account + " on " + o.id + ": ");
  if (!password) return report(password.error());
  return with_client(ctx, [&](control_client& c) -> int {
    json args{{"id", o.id}, {"account", o.account}, {"password", as_string(*password)}};
    auto r = c.call("server.credentials", args);
    control::scrub_passwords(args);
    if (!r) return report(r.error());
    return print_result(ctx, *r, "new credentials for " + one_line(*r));
  });
}

// --- events -------------------------------------------------------------------------------

void print_event(const context& ctx, const json& e) {
  if (ctx.json) {
    std::cout << e.dump() << '\n';
  } else {
    std::cout << '#' << num(e, "seq") << "  " << utc_time(num(e, "time_ms")) << "  " << std::left
              << std::setw(22) << str(e, "type") << str(e, "server_id") << "  "
              << str(e, "address");
    const auto& d = e["details"];
    if (d.is_object() && !d.empty()) std::cout << "  " << d.dump();
    std::cout << '\n';
  }
  if (opts().follow) std::cout << std::flush;
}

int run_events(const context& ctx) {
  const auto& o = opts();
  if (!o.type.empty()) {
    const auto& known = control::event_types();
    if (std::find(known.begin(), known.end(), o.type) == known.end()) {
      std::string list;
      for (const auto& t : known) list += (list.empty() ? "" : ", ") + t;
      return report(make_error(ec::invalid_argument,
                               "unknown event type \"" + o.type + "\"; known: " + list));
    }
  }
  uint64_t since = o.since;
  // A cutoff (this reader fell behind) is survivable: resume from the last seq received.
  for (;;) {
    bool cut = false;
    int rc = with_client(ctx, [&](control_client& c) -> int {
      json args{{"since", since}, {"follow", o.follow}};
      if (!o.type.empty()) args["type"] = o.type;
      if (!o.server.empty()) args["server"] = o.server;
      auto end = c.subscribe(args, [&](const json& e) {
        print_event(ctx, e);
        return true;
      });
      if (!end) return report(end.error());
      if (end->cut_off) {
        cut = true;
        since = end->last_seq;
        std::cerr << "certfleet: " << end->reason << "; resuming from #" << since << '\n';
      }
      return exit_ok;
    });
    if (rc != exit_ok || !cut) return rc;
  }
}

CLI::App* leaf(CLI::App* parent, const std::string& name, const std::string& help, context& ctx,
               int (*fn)(const context&)) {
  auto* sub = parent->add_subcommand(name, help);
  sub->add_option("--socket", opts().socket,
                  "Control socket of certfleetd (default: daemon.control_socket, or "
                  "<state_dir>/control.sock)");
  sub->callback([&ctx, fn] { ctx.run = [&ctx, fn]() -> int { return fn(ctx); }; });
  return sub;
}

}  // namespace

void add_server_commands(CLI::App& app, context& ctx) {
  auto& o = opts();
  leaf(&app, "status", "Counts of servers per state, handshakes, last errors", ctx, run_status);

  auto* events = leaf(&app, "events",
                      "Print trust-change events; --follow keeps streaming; --since SEQ resumes "
                      "without loss",
                      ctx, run_events);
  events->add_option("--since", o.since, "Only events after this seq (0: from the start)");
  events->add_flag("--follow", o.follow, "Keep streaming new events");
  events->add_option("--type", o.type, "Only events of this type (docs/control-api.md)");
  events->add_option("--server", o.server, "Only events of this server id");

  auto* server = app.add_subcommand("server", "Backup servers managed by certfleetd");
  server->require_subcommand(1);
  leaf(server, "list", "Table of servers: id, name, address, state, thumbprint, last seen", ctx,
       run_list);
  leaf(server, "show", "Everything about one server, including its inventory", ctx, run_show)
      ->add_option("ID", o.id, "Server id")
      ->required();

  auto* add = leaf(server, "add",
                   "Register a server (or many with --from FILE); its credentials are sealed "
                   "until the registration succeeds, then deleted",
                   ctx, run_add);
  add->add_option("HOST[:PORT]", o.address, "Address; [IPv6]:PORT; default port 9401");
  add->add_option("--account", o.account, "Account with the Backup Administrator role");
  add->add_flag("--password-stdin", o.password_stdin,
                "Read the password from stdin (without echo on a terminal)");
  add->add_option("--password-file", o.password_file, "Read the password from FILE (mode 0600)");
  add->add_option("--expect-thumbprint", o.expect_thumbprint,
                  "SHA-256 thumbprint verified out of band: trusted at once when it matches");
  add->add_option("--name", o.name, "Display name (default HOST:PORT)");
  add->add_option("--from", o.from_file,
                  "CSV (header host,port,account,expected_thumbprint,name) or JSON array");

  auto* trust = leaf(server, "trust",
                     "Validate the thumbprint a server presented (quote it exactly), or every "
                     "server matching a fleet manifest",
                     ctx, run_trust);
  trust->add_option("ID", o.id, "Server id");
  trust->add_option("--thumbprint", o.thumbprint_text, "The presented SHA-256 thumbprint");
  trust->add_option("--all-matching-manifest", o.manifest_file,
                    "Fleet manifest (JSON: [{address, port, sha256}] or {\"endpoints\": [...]})");

  leaf(server, "reject", "Refuse the thumbprint a server presented", ctx,
       [](const context& c) { return run_simple(c, "server.reject", "rejected"); })
      ->add_option("ID", o.id, "Server id")
      ->required();
  leaf(server, "remove", "Remove a server with its pins and any retained credentials", ctx,
       [](const context& c) { return run_simple(c, "server.remove", "removed"); })
      ->add_option("ID", o.id, "Server id")
      ->required();
  auto* creds = leaf(server, "credentials",
                     "New registration credentials for a server in auth_failed or "
                     "pending_registration; retries at once",
                     ctx, run_credentials);
  creds->add_option("ID", o.id, "Server id")->required();
  creds->add_option("--account", o.account, "Account with the Backup Administrator role")
      ->required();
  creds->add_flag("--password-stdin", o.password_stdin, "Read the password from stdin");
  creds->add_option("--password-file", o.password_file, "Read the password from FILE (mode 0600)");
}

}  // namespace certfleet::cli
