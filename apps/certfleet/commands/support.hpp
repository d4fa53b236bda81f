// Pieces several `certfleet` commands share: the control-socket client, password input,
// thumbprint validation, table and time formatting, and the local certificate store.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/certfleet/commands.hpp"
#include "control/control_client.hpp"
#include "crypto/certificate_store.hpp"
#include "crypto/secret.hpp"

namespace certfleet::cli {

using json = nlohmann::json;
using control::control_client;

/// Requests stay under the daemon's line limit with room for the envelope.
inline constexpr size_t batch_bytes = control::max_request_line - 4096;

/// Adds a command to `parent` whose callback makes `ctx.run` call `fn`.
CLI::App* add_command(CLI::App& parent, const std::string& name, const std::string& help,
                      context& ctx, std::function<int()> fn);

/// Connects to the daemon, runs `body`, and turns a failed connect into exit 7 ("not running") or
/// 8. A state directory that was never initialised is exit 3 before any connect is tried (unless
/// --socket names the socket).
int with_client(const context& ctx, const std::function<int(control::control_client&)>& body);

/// Where a command takes a password from: exactly one of --password-stdin or --password-file.
struct password_source {
  bool from_stdin = false;
  std::string file;

  void add_flags(CLI::App& cmd);
  /// Reads it; `prompt` is shown when stdin is a terminal.
  caf::expected<secret_bytes> read(const std::string& prompt) const;
};

std::string as_string(const secret_bytes& s);

/// Validates a thumbprint on the client so a typo fails with exit 2 before reaching the daemon.
caf::expected<std::string> normalised_thumbprint(const std::string& text, const std::string& what);

std::string relative_time(int64_t ms);
std::string utc_time(int64_t ms);
/// j[key] if it is a string (number), else "" (0).
std::string str(const json& j, const char* key);
int64_t num(const json& j, const char* key);
void print_table(const std::vector<std::vector<std::string>>& rows);
/// The JSON result with --json, else `text`.
int print_result(const context& ctx, const json& result, const std::string& text);
/// "ID (NAME, ADDRESS): STATE".
std::string one_line(const json& server);
/// Splits `items` into batches whose serialised size stays under the daemon's line limit.
std::vector<json> batches(const std::vector<json>& items, size_t per_item_extra);

/// The certificate store of an initialised state directory (exit 3 when not initialised).
caf::expected<certificate_store> open_store(const settings& cfg);
caf::expected<identity> generate_identity(const settings& cfg, const std::string& friendly_name);
int print_identity(const context& ctx, const identity& id, const std::string& heading);

}  // namespace certfleet::cli
