// `certfleet server trust ID --thumbprint SHA256` and `server trust --all-matching-manifest FILE`:
// validate the thumbprint a server presented.
#include <iostream>

#include "apps/certfleet/commands/support.hpp"
#include "apps/cli/output.hpp"
#include "common/fs.hpp"
#include "control/manifest.hpp"

namespace certfleet::cli {
namespace {

struct server_trust_options {
  std::string id;
  std::string thumbprint_text;
  std::string manifest_file;
};

/// The entries of a fleet manifest (control/manifest.hpp), each with its thumbprint, as the
/// daemon's server.trust_manifest takes them.
caf::expected<std::vector<json>> load_manifest(const std::string& file) {
  auto bytes = read_file(file);
  if (!bytes) return bytes.error();
  auto entries = control::parse_manifest_text(std::string(bytes->begin(), bytes->end()), file,
                                              control::thumbprint_rule::required);
  if (!entries) return entries.error();
  std::vector<json> out;
  for (const auto& e : *entries)
    out.push_back({{"host", e.host}, {"port", e.port}, {"sha256", e.sha256->to_string()}});
  return out;
}

int run_trust_manifest(const context& ctx, const std::string& manifest_file) {
  auto entries = load_manifest(manifest_file);
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

int run_server_trust(const context& ctx, const server_trust_options& o) {
  if (!o.manifest_file.empty()) {
    if (!o.id.empty() || !o.thumbprint_text.empty())
      return report(make_error(ec::invalid_argument,
                               "--all-matching-manifest takes servers and thumbprints from the "
                               "manifest; do not also give ID or --thumbprint"));
    return run_trust_manifest(ctx, o.manifest_file);
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

}  // namespace

void add_server_trust_command(CLI::App& server, context& ctx) {
  auto o = std::make_shared<server_trust_options>();
  auto* cmd = add_command(server, "trust",
                          "Validate the thumbprint a server presented (quote it exactly), or "
                          "every server matching a fleet manifest",
                          ctx, [&ctx, o] { return run_server_trust(ctx, *o); });
  cmd->add_option("ID", o->id, "Server id");
  cmd->add_option("--thumbprint", o->thumbprint_text, "The presented SHA-256 thumbprint");
  cmd->add_option("--all-matching-manifest", o->manifest_file,
                  "Fleet manifest (JSON: [{address, port, sha256}] or {\"endpoints\": [...]})");
}

}  // namespace certfleet::cli
