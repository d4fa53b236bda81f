#include "apps/certfleet/commands/support.hpp"

#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <iomanip>
#include <iostream>

#include "apps/cli/output.hpp"
#include "common/fs.hpp"
#include "config/state_layout.hpp"
#include "crypto/thumbprint.hpp"

namespace certfleet::cli {
namespace {

using control::control_client;

caf::expected<std::string> socket_path(const context& ctx) {
  if (!ctx.socket.empty()) return ctx.socket;
  auto cfg = ctx.load();
  if (!cfg) return cfg.error();
  state_layout layout{cfg->state_dir};
  // Without a database the directory was never initialised: no daemon can be serving it.
  if (!std::filesystem::exists(layout.db_dir()))
    return make_error(ec::not_found, "state directory " + layout.root.string() +
                                         " is not initialised; run 'certfleet init' first");
  if (!cfg->daemon.control_socket.empty()) return cfg->daemon.control_socket;
  return layout.control_socket().string();
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

}  // namespace

CLI::App* add_command(CLI::App& parent, const std::string& name, const std::string& help,
                      context& ctx, std::function<int()> fn) {
  auto* cmd = parent.add_subcommand(name, help);
  cmd->callback([&ctx, fn = std::move(fn)] { ctx.run = fn; });
  return cmd;
}

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

void password_source::add_flags(CLI::App& cmd) {
  cmd.add_flag("--password-stdin", from_stdin,
               "Read the password from stdin (without echo on a terminal)");
  cmd.add_option("--password-file", file, "Read the password from FILE (mode 0600)");
}

caf::expected<secret_bytes> password_source::read(const std::string& prompt) const {
  if (from_stdin == !file.empty())
    return make_error(ec::invalid_argument,
                      "give the password with exactly one of --password-stdin or "
                      "--password-file FILE (mode 0600)");
  return from_stdin ? read_password_stdin(prompt) : read_password_file(file);
}

std::string as_string(const secret_bytes& s) {
  return std::string(reinterpret_cast<const char*>(s.data()), s.size());
}

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

caf::expected<certificate_store> open_store(const settings& cfg) {
  state_layout layout{cfg.state_dir};
  if (!std::filesystem::exists(layout.root))
    return make_error(ec::not_found, "state directory " + layout.root.string() +
                                         " does not exist; run 'certfleet init' first");
  if (auto err = check_private_directory(layout.root)) return err;
  return certificate_store::open(layout.certs_dir(), false, cfg.identity.store_group);
}

caf::expected<identity> generate_identity(const settings& cfg, const std::string& friendly_name) {
  identity_subject subject{cfg.identity.common_name, cfg.identity.organization};
  return identity::generate(subject, std::chrono::hours{24} * cfg.identity.validity_days,
                            friendly_name);
}

int print_identity(const context& ctx, const identity& id, const std::string& heading) {
  auto s = id.summary();
  if (ctx.json)
    std::cout << to_json(s).dump(2) << '\n';
  else
    print_summary(std::cout, s, heading);
  return exit_ok;
}

}  // namespace certfleet::cli
