// certfleet-agent: the backup-server side. One endpoint (`run`) or a simulated fleet (`fleet`),
// and the commands that inspect and change an agent's state dir (docs/agent.md).
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "agent/control.hpp"
#include "agent/server.hpp"
#include "agent/state.hpp"
#include "apps/cli/command_line.hpp"
#include "apps/cli/output.hpp"
#include "common/fs.hpp"
#include "crypto/certificate_info.hpp"
#include "net/connector.hpp"

namespace {

using namespace certfleet;
using namespace certfleet::agent;
namespace fs = std::filesystem;

const char* program = "certfleet-agent";

/// Every flag of every command; the global ones (--state-dir, --json, --log-level) come from
/// `global_flags` and are accepted before or after the command.
struct options : cli::global_flags {
  std::string log_level = "info";
  // run / fleet
  std::string bind = "127.0.0.1";
  uint16_t port = 9401;
  int64_t handshake_timeout_ms = 10'000;
  int64_t idle_timeout_s = 300;
  bool legacy = false;
  size_t legacy_count = 0;
  // fleet
  size_t count = 0;
  std::string bind_range;
  uint16_t base_port = 0;
  std::string admin_account = "admin";
  std::string admin_password_file;
  std::string profile = "simulation";
  // accounts, managers, fault
  std::string name;
  std::string role;
  bool password_stdin = false;
  std::string thumb;
  std::string endpoint = "0";
  std::string fault;
  uint64_t fault_value = 0;
};

int fail(const caf::error& err) {
  return cli::report(err, program);
}

fs::path state_dir(const options& o) {
  return fs::absolute(o.state_dir);
}

/// The commands that read an agent's state need one that `run` or `fleet` created (exit 3).
caf::error require_state_dir(const options& o) {
  if (fs::exists(state_paths(state_dir(o)).db)) return {};
  return make_error(ec::not_found, "the state dir " + state_dir(o).string() +
                                       " is not initialised; start the agent once with 'run' "
                                       "(or 'fleet')");
}

// Blocks the signals that end `run` and `fleet` before any thread starts, so that only
// `wait_for_stop` receives them.
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

void wait_for_stop() {
  auto set = stop_signals();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      spdlog::info(
          "SIGHUP: nothing to do; certificate and accounts changes are picked up with "
          "each new connection");
      continue;
    }
    spdlog::info("stopping on signal {}", sig);
    return;
  }
}

server_options server_opts(const options& o) {
  server_options so;
  so.handshake_timeout = std::chrono::milliseconds{o.handshake_timeout_ms};
  so.idle_timeout = std::chrono::seconds{o.idle_timeout_s};
  return so;
}

caf::expected<secret_bytes> strip_newline(secret_bytes s, const std::string& origin) {
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
  if (s.empty()) return make_error(ec::invalid_argument, origin + " holds an empty password");
  return s;
}

int cmd_run(const options& o) {
  single_agent_options so;
  so.legacy = o.legacy;
  auto agent = open_single_agent(state_dir(o), so);
  if (!agent) return fail(agent.error());
  state_paths paths(state_dir(o));
  auto summary = agent->ep->current_identity().summary();
  cli::print_summary(std::cout, summary,
                     agent->identity_created
                         ? "New agent certificate (verify these thumbprints out of band)"
                         : "Agent certificate (verify these thumbprints out of band)");
  if (agent->accounts_created || agent->ep->accounts().accounts().empty())
    std::cout << "No accounts yet: add a Backup Administrator with\n  " << program
              << " --state-dir " << paths.root.string()
              << " accounts add NAME --role administrator --password-stdin\n";
  auto server_id = agent->ep->options().server_id;
  std::vector<std::unique_ptr<endpoint>> eps;
  eps.push_back(std::move(agent->ep));
  agent_server server(server_opts(o), std::move(eps), {{o.bind, o.port}});
  if (auto err = server.start()) return fail(err);
  auto ctl = control_server::start(paths.control_socket, [&server](const nlohmann::json& r) {
    return handle_control_request(server, r);
  });
  if (!ctl) return fail(ctl.error());
  auto a = server.address(0);
  std::cout << "Listening on " << a.host << ":" << a.port << " as server " << server_id
            << (o.legacy ? " speaking the legacy protocol (version 1: account logins, no "
                           "certificate registration)"
                         : "")
            << " (control socket " << paths.control_socket.string() << ")" << std::endl;
  wait_for_stop();
  ctl->reset();
  server.stop();
  return cli::exit_ok;
}

int cmd_fleet(const options& o) {
  auto limit = raise_fd_limit();
  if (auto err = check_fd_budget(o.count, limit)) return fail(err);
  if (o.admin_password_file.empty())
    return fail(make_error(ec::invalid_argument,
                           "--admin-password-file is required: a file (mode 0600) holding the "
                           "password of the fleet's admin account"));
  if (auto err = check_private_file(o.admin_password_file)) return fail(err);
  auto bytes = read_file(o.admin_password_file);
  if (!bytes) return fail(bytes.error());
  auto password = strip_newline(secret_bytes(bytes->begin(), bytes->end()),
                                "the password file " + o.admin_password_file);
  std::fill(bytes->begin(), bytes->end(), 0);
  if (!password) return fail(password.error());
  auto profile = parse_hash_profile(o.profile);
  if (!profile) return fail(profile.error());

  fleet_options fo;
  fo.state_dir = state_dir(o);
  fo.count = o.count;
  fo.bind = o.bind;
  fo.bind_range = o.bind_range;
  fo.base_port = o.base_port;
  fo.admin_account = o.admin_account;
  fo.admin_password = std::move(*password);
  fo.profile = *profile;
  fo.legacy_count = std::min(o.legacy_count, o.count);
  auto started = std::chrono::steady_clock::now();
  auto f = open_fleet(fo);
  if (!f) return fail(f.error());
  auto prepared = std::chrono::steady_clock::now();
  spdlog::info("{} endpoints ready ({} new identities) in {} ms", o.count, f->identities_generated,
               std::chrono::duration_cast<std::chrono::milliseconds>(prepared - started).count());

  state_paths paths(fo.state_dir);
  agent_server server(server_opts(o), std::move(f->endpoints), f->addresses);
  std::mutex manifest_mu;
  auto fleet_id = f->fleet_id;
  auto admin = o.admin_account;
  server.on_identity_changed = [&](size_t) {
    std::lock_guard<std::mutex> lock(manifest_mu);
    if (auto err = write_manifest(paths.manifest, server, fleet_id, admin))
      spdlog::error("cannot rewrite the manifest: {}", describe(err));
  };
  if (auto err = server.start()) return fail(err);
  {
    std::lock_guard<std::mutex> lock(manifest_mu);
    if (auto err = write_manifest(paths.manifest, server, fleet_id, admin)) return fail(err);
  }
  auto ctl = control_server::start(paths.control_socket, [&server](const nlohmann::json& r) {
    return handle_control_request(server, r);
  });
  if (!ctl) return fail(ctl.error());
  std::cout << "Fleet " << fleet_id << ": " << o.count << " endpoints listening; manifest "
            << paths.manifest.string() << "; control socket " << paths.control_socket.string()
            << std::endl;
  wait_for_stop();
  ctl->reset();
  server.stop();
  return cli::exit_ok;
}

int cmd_cert_show(const options& o) {
  if (auto err = require_state_dir(o)) return fail(err);
  auto store = certificate_store::open(state_paths(state_dir(o)).certs, false);
  if (!store) return fail(store.error());
  auto id = store->load_current();
  if (!id) return fail(id.error());
  if (o.json)
    std::cout << cli::to_json(id->summary()).dump(2) << std::endl;
  else
    cli::print_summary(std::cout, id->summary(),
                       "Agent certificate (verify these thumbprints out of band)");
  return cli::exit_ok;
}

caf::expected<std::string> single_server_id(const options& o) {
  if (auto err = require_state_dir(o)) return err;
  auto store = agent_store::open(state_paths(state_dir(o)).db, true);
  if (!store) return store.error();
  auto sid = (*store)->get_meta("server_id");
  if (!sid) return sid.error();
  if (!*sid)
    return make_error(ec::not_found, "the state dir " + state_dir(o).string() +
                                         " is not a single agent's; start it once with 'run'");
  return **sid;
}

int cmd_cert_regenerate(const options& o) {
  auto sid = single_server_id(o);
  if (!sid) return fail(sid.error());
  auto id = regenerate_single_identity(state_dir(o), *sid);
  if (!id) return fail(id.error());
  cli::print_summary(std::cout, id->summary(),
                     "New agent certificate (a running agent presents it from its next "
                     "connection on)");
  return cli::exit_ok;
}

caf::expected<uint32_t> endpoint_index(const options& o) {
  try {
    size_t pos = 0;
    auto v = std::stoul(o.endpoint, &pos);
    if (pos == o.endpoint.size() && v <= UINT32_MAX) return static_cast<uint32_t>(v);
  } catch (const std::exception&) {
  }
  return make_error(ec::invalid_argument, "--endpoint must be an index, not '" + o.endpoint + "'");
}

int cmd_managers_list(const options& o) {
  auto index = endpoint_index(o);
  if (!index) return fail(index.error());
  if (auto err = require_state_dir(o)) return fail(err);
  auto store = agent_store::open(state_paths(state_dir(o)).db, true);
  if (!store) return fail(store.error());
  auto list = (*store)->managers(*index);
  if (!list) return fail(list.error());
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& m : *list)
      out.push_back({{"thumbprint", m.manager_thumbprint.to_string()},
                     {"name", m.manager_name},
                     {"registered_unix_ms", m.registered_unix_ms}});
    std::cout << out.dump(2) << std::endl;
  } else {
    if (list->empty()) std::cout << "No manager is registered with endpoint " << *index << ".\n";
    for (const auto& m : *list)
      std::cout << m.manager_thumbprint.to_string() << "  " << m.manager_name << '\n';
  }
  return cli::exit_ok;
}

int cmd_managers_show(const options& o) {
  auto index = endpoint_index(o);
  if (!index) return fail(index.error());
  auto t = thumbprint::parse(o.thumb);
  if (!t) return fail(t.error());
  auto store = agent_store::open(state_paths(state_dir(o)).db, true);
  if (!store) return fail(store.error());
  auto list = (*store)->managers(*index);
  if (!list) return fail(list.error());
  auto it = std::find_if(list->begin(), list->end(),
                         [&](const manager_record& m) { return m.manager_thumbprint == *t; });
  if (it == list->end())
    return fail(make_error(ec::not_found, "no manager " + t->to_string() +
                                              " is registered with endpoint " +
                                              std::to_string(*index) + "; see 'managers list'"));
  auto der = (*store)->manager_certificate(*index, *t);
  if (!der) return fail(der.error());
  if (!*der || (*der)->empty())
    return fail(make_error(ec::not_found,
                           "manager " + t->to_string() +
                               " was registered by an agent that kept only its thumbprint; its "
                               "certificate is stored when it registers again"));
  auto summary = summarize_certificate(**der);
  if (!summary) return fail(summary.error());
  auto pem = certificate_pem_of(**der);
  if (!pem) return fail(pem.error());
  summary->friendly_name = it->manager_name;
  if (o.json) {
    auto out = cli::to_json(*summary);
    out["registered_unix_ms"] = it->registered_unix_ms;
    out["pem"] = *pem;
    std::cout << out.dump(2) << std::endl;
  } else {
    cli::print_summary(std::cout, *summary, "Registered manager '" + it->manager_name + "'");
    std::cout << '\n' << *pem;
  }
  return cli::exit_ok;
}

int cmd_managers_revoke(const options& o) {
  auto index = endpoint_index(o);
  if (!index) return fail(index.error());
  auto t = thumbprint::parse(o.thumb);
  if (!t) return fail(t.error());
  state_paths paths(state_dir(o));
  // A running agent must forget the manager too: go through it when it answers.
  auto reply =
      control_call(paths.control_socket, {{"endpoint", *index}, {"revoke", t->to_string()}});
  if (reply) {
    if (!(*reply)["ok"].get<bool>())
      return fail(make_error(ec::not_found, (*reply)["error"]["message"].get<std::string>()));
    std::cout << "Revoked manager " << t->to_string() << " (running agent).\n";
    return cli::exit_ok;
  }
  if (code_of(reply.error()) != ec::not_found) return fail(reply.error());
  auto store = agent_store::open(paths.db, false);
  if (!store) return fail(store.error());
  auto removed = (*store)->remove_manager(*index, *t);
  if (!removed) return fail(removed.error());
  if (!*removed)
    return fail(make_error(ec::not_found, "manager " + t->to_string() +
                                              " is not registered with endpoint " +
                                              std::to_string(*index)));
  std::cout << "Revoked manager " << t->to_string() << ".\n";
  return cli::exit_ok;
}

caf::expected<account_book> load_or_empty(const fs::path& p) {
  if (!fs::exists(p)) return account_book{};
  return account_book::load(p);
}

int cmd_accounts_add(const options& o) {
  if (!o.password_stdin)
    return fail(make_error(ec::invalid_argument,
                           "give the password on standard input with --password-stdin"));
  auto r = parse_role(o.role);
  if (!r) return fail(r.error());
  auto profile = parse_hash_profile(o.profile);
  if (!profile) return fail(profile.error());
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  auto password = strip_newline(to_secret(text), "standard input");
  std::fill(text.begin(), text.end(), '\0');
  if (!password) return fail(password.error());
  auto hash = hash_password(*password, *profile);
  if (!hash) return fail(hash.error());
  state_paths paths(state_dir(o));
  if (auto err = ensure_directory(paths.root, 0700)) return fail(err);
  auto book = load_or_empty(paths.accounts);
  if (!book) return fail(book.error());
  if (auto err = book->put({o.name, *r, std::move(*hash)})) return fail(err);
  if (auto err = book->save(paths.accounts)) return fail(err);
  std::cout << "Account '" << o.name << "' (" << display_name(*r) << ") saved.\n";
  return cli::exit_ok;
}

int cmd_accounts_list(const options& o) {
  auto book = account_book::load(state_paths(state_dir(o)).accounts);
  if (!book) return fail(book.error());
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& a : book->accounts())
      out.push_back({{"name", a.name}, {"role", to_string(a.role)}});
    std::cout << out.dump(2) << std::endl;
  } else {
    if (book->accounts().empty()) std::cout << "No accounts.\n";
    for (const auto& a : book->accounts())
      std::cout << a.name << "  " << display_name(a.role) << '\n';
  }
  return cli::exit_ok;
}

int cmd_accounts_remove(const options& o) {
  auto path = state_paths(state_dir(o)).accounts;
  auto book = account_book::load(path);
  if (!book) return fail(book.error());
  if (auto err = book->remove(o.name)) return fail(err);
  if (auto err = book->save(path)) return fail(err);
  std::cout << "Account '" << o.name << "' removed.\n";
  return cli::exit_ok;
}

int cmd_fault(const options& o) {
  auto kind = parse_fault_kind(o.fault);
  if (!kind) return fail(kind.error());
  nlohmann::json req = {{"fault", to_string(*kind)}};
  if (o.endpoint == "all") {
    req["endpoint"] = "all";
  } else {
    auto index = endpoint_index(o);
    if (!index) return fail(index.error());
    req["endpoint"] = *index;
  }
  if (takes_value(*kind)) req["value"] = o.fault_value;
  auto reply = control_call(state_paths(state_dir(o)).control_socket, req);
  if (!reply) return fail(reply.error());
  if (!(*reply)["ok"].get<bool>()) {
    std::cerr << program << ": " << (*reply)["error"]["message"].get<std::string>() << '\n';
    return cli::exit_refused;
  }
  std::cout << "ok\n";
  return cli::exit_ok;
}

/// `cmd` with the logger set up first (after the parse, so that --log-level anywhere counts).
std::function<int()> logged(const options& o, int (*cmd)(const options&)) {
  return [&o, cmd] {
    auto logger = spdlog::stderr_logger_mt(program);
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(o.log_level));
    spdlog::flush_on(spdlog::level::info);
    return cmd(o);
  };
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  auto set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  options o;
  if (const char* env = std::getenv("CERTFLEET_AGENT_STATE_DIR")) o.state_dir = env;
  if (o.state_dir.empty()) o.state_dir = "certfleet-agent-state";

  CLI::App app{
      "certfleet-agent: a backup-server endpoint (or a simulated fleet of them) that a "
      "certfleet manager registers with and collects from.\nGlobal flags may come before or "
      "after the command.\nExit codes: 0 ok, 1 unexpected failure, 2 usage, 3 not found, 4 "
      "insecure permissions, 6 storage failure, 7 unreachable, 8 refused.",
      program};
  cli::prepare_app(app);
  app.add_option("-s,--state-dir", o.state_dir,
                 "State directory (default: $CERTFLEET_AGENT_STATE_DIR or "
                 "./certfleet-agent-state)");
  cli::add_global_flags(app, o, cli::with_json);
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  std::function<int()> run;

  auto add_timeouts = [&](CLI::App* sub) {
    sub->add_option("--handshake-timeout-ms", o.handshake_timeout_ms,
                    "Drop a connection whose TLS handshake is not complete this long after "
                    "accept")
        ->capture_default_str()
        ->check(CLI::Range(int64_t{1}, int64_t{600'000}));
    sub->add_option("--idle-timeout-s", o.idle_timeout_s,
                    "Close an established connection idle this long")
        ->capture_default_str()
        ->check(CLI::Range(int64_t{1}, int64_t{86'400}));
  };

  auto* run_cmd = app.add_subcommand("run",
                                     "Serve one endpoint; creates its identity and an "
                                     "empty accounts file on first start");
  run_cmd->add_option("--bind", o.bind, "IPv4 or IPv6 address to listen on")->capture_default_str();
  run_cmd->add_option("--port", o.port, "TCP port (0: any free port)")->capture_default_str();
  run_cmd->add_flag("--legacy", o.legacy,
                    "Speak only the legacy protocol (version 1) of a backup server of an earlier "
                    "release: the manager logs in with the account on every connection");
  add_timeouts(run_cmd);
  run_cmd->callback([&] { run = logged(o, cmd_run); });

  auto* fleet_cmd = app.add_subcommand("fleet", "Serve N simulated endpoints in this process");
  fleet_cmd->add_option("--count", o.count, "Number of endpoints")->required();
  fleet_cmd->add_option("--bind", o.bind, "Address of every endpoint (ports base-port + i)")
      ->capture_default_str();
  fleet_cmd->add_option("--bind-range", o.bind_range,
                        "First 127.0.0.0/8 address: endpoint i listens on it + i, all on "
                        "--base-port");
  fleet_cmd
      ->add_option("--base-port", o.base_port,
                   "Port of endpoint 0 (0: every endpoint gets a free port; see the "
                   "manifest)")
      ->capture_default_str();
  fleet_cmd
      ->add_option("--admin-account", o.admin_account,
                   "The Backup Administrator account every endpoint has")
      ->capture_default_str();
  fleet_cmd
      ->add_option("--admin-password-file", o.admin_password_file,
                   "File (mode 0600) holding that account's password")
      ->required();
  fleet_cmd
      ->add_option("--hash-profile", o.profile,
                   "Password hash cost: simulation (cheap, for simulated fleets only) or "
                   "interactive")
      ->capture_default_str();
  fleet_cmd
      ->add_option("--legacy-endpoints", o.legacy_count,
                   "Endpoints 0..N-1 speak only the legacy protocol (version 1)")
      ->capture_default_str();
  add_timeouts(fleet_cmd);
  fleet_cmd->callback([&] { run = logged(o, cmd_fleet); });

  auto* cert = app.add_subcommand("cert", "The single agent's certificate");
  auto* cert_show = cert->add_subcommand("show", "Print the certificate summary");
  cert_show->callback([&] { run = logged(o, cmd_cert_show); });
  auto* cert_regen = cert->add_subcommand(
      "regenerate",
      "Make a new key and certificate; a running agent presents it from its next "
      "connection on");
  cert_regen->callback([&] { run = logged(o, cmd_cert_regenerate); });

  auto* managers = app.add_subcommand("managers", "Managers registered with an endpoint");
  managers->add_option("--endpoint", o.endpoint, "Endpoint index (fleet; 0 for a single agent)")
      ->capture_default_str();
  auto* m_list = managers->add_subcommand("list", "List registered managers");
  m_list->callback([&] { run = logged(o, cmd_managers_list); });
  auto* m_show = managers->add_subcommand(
      "show", "A registered manager's certificate: summary and PEM (as stored at registration)");
  m_show->add_option("thumbprint", o.thumb, "SHA-256 thumbprint of the manager")->required();
  m_show->callback([&] { run = logged(o, cmd_managers_show); });
  auto* m_revoke = managers->add_subcommand(
      "revoke", "Forget a manager (through the running agent when there is one)");
  m_revoke->add_option("thumbprint", o.thumb, "SHA-256 thumbprint of the manager")->required();
  m_revoke->callback([&] { run = logged(o, cmd_managers_revoke); });

  auto* accounts = app.add_subcommand("accounts", "The single agent's accounts file");
  auto* a_add = accounts->add_subcommand("add", "Add or replace an account");
  a_add->add_option("name", o.name, "Account name")->required();
  a_add->add_option("--role", o.role, "administrator (Backup Administrator) or viewer")->required();
  a_add->add_flag("--password-stdin", o.password_stdin, "Read the password from standard input");
  a_add->add_option("--hash-profile", o.profile, "interactive or simulation");
  a_add->callback([&] {
    if (a_add->count("--hash-profile") == 0) o.profile = "interactive";
    run = logged(o, cmd_accounts_add);
  });
  auto* a_list = accounts->add_subcommand("list", "List accounts and roles");
  a_list->callback([&] { run = logged(o, cmd_accounts_list); });
  auto* a_remove = accounts->add_subcommand("remove", "Remove an account");
  a_remove->add_option("name", o.name, "Account name")->required();
  a_remove->callback([&] { run = logged(o, cmd_accounts_remove); });

  auto* fault = app.add_subcommand(
      "fault",
      "Switch a fault of a running agent's endpoint: offline, online, regenerate, stall, "
      "slow-handshake MS, drop-after BYTES, deny-registrations, accept-registrations, "
      "clear");
  fault->add_option("--endpoint", o.endpoint, "Endpoint index or 'all'")->required();
  fault->add_option("fault", o.fault, "The fault")->required();
  fault->add_option("value", o.fault_value, "MS for slow-handshake, BYTES for drop-after");
  fault->callback([&] {
    auto kind = parse_fault_kind(o.fault);
    if (kind && takes_value(*kind) && fault->count("value") == 0)
      throw CLI::ValidationError("value", o.fault + " needs a number (milliseconds or bytes)");
    run = logged(o, cmd_fault);
  });

  return cli::parse_and_run(app, argc, argv, o, run);
}
