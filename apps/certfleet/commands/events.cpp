// `certfleet events [--since SEQ] [--follow] [--type T] [--server ID]`: trust-change events.
#include <algorithm>
#include <iomanip>
#include <iostream>

#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"

namespace certfleet::cli {
namespace {

struct events_options {
  uint64_t since = 0;
  bool follow = false;
  std::string type;
  std::string server;
};

void print_event(const context& ctx, const events_options& o, const json& e) {
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
  if (o.follow) std::cout << std::flush;
}

int run_events(const context& ctx, const events_options& o) {
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
    int rc = with_client(ctx, [&](control::control_client& c) -> int {
      json args{{"since", since}, {"follow", o.follow}};
      if (!o.type.empty()) args["type"] = o.type;
      if (!o.server.empty()) args["server"] = o.server;
      auto end = c.subscribe(args, [&](const json& e) {
        print_event(ctx, o, e);
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

}  // namespace

void add_events_command(CLI::App& parent, context& ctx) {
  auto o = std::make_shared<events_options>();
  auto* cmd = add_command(parent, "events",
                          "Print trust-change events; --follow keeps streaming; --since SEQ "
                          "resumes without loss",
                          ctx, [&ctx, o] { return run_events(ctx, *o); });
  cmd->add_option("--since", o->since, "Only events after this seq (0: from the start)");
  cmd->add_flag("--follow", o->follow, "Keep streaming new events");
  cmd->add_option("--type", o->type, "Only events of this type (docs/control-api.md)");
  cmd->add_option("--server", o->server, "Only events of this server id");
}

}  // namespace certfleet::cli
