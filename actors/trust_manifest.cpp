#include "actors/trust_manifest.hpp"

#include <unordered_map>

#include "common/address.hpp"

namespace certfleet {

const char* to_string(manifest_outcome o) {
  switch (o) {
    case manifest_outcome::trusted:
      return "trusted";
    case manifest_outcome::already_trusted:
      return "already_trusted";
    case manifest_outcome::not_presented:
      return "not_presented";
    case manifest_outcome::mismatch:
      return "mismatch";
    case manifest_outcome::error:
      return "error";
  }
  return "error";
}

caf::expected<manifest_report> apply_trust_manifest(
    manager& m, const std::vector<trust_manifest_entry>& entries, const std::string& validated_by) {
  std::unordered_map<std::string, size_t> by_address;
  std::vector<std::string> addresses;
  std::vector<bool> matched(entries.size(), false);
  for (size_t i = 0; i < entries.size(); ++i) {
    addresses.push_back(normalised_address(entries[i].host, entries[i].port));
    by_address[addresses.back()] = i;
  }
  auto views = m.list();
  if (!views) return views.error();
  manifest_report report;
  for (const auto& v : *views) {
    const auto& r = v.record;
    auto address = normalised_address(r.host, r.port);
    auto found = by_address.find(address);
    if (found == by_address.end()) continue;
    matched[found->second] = true;
    const auto& expected = entries[found->second].sha256;
    manifest_result result;
    result.server_id = r.id;
    result.address = address;
    if (r.state == server_state::trusted && r.pinned && *r.pinned == expected) {
      result.outcome = manifest_outcome::already_trusted;
      ++report.already_trusted;
    } else if (!r.presented) {
      result.outcome = manifest_outcome::not_presented;
      result.message = "the server has not presented a certificate yet (state " +
                       std::string(to_string(r.state)) + "); run this again later";
      ++report.skipped;
    } else if (*r.presented != expected) {
      result.outcome = manifest_outcome::mismatch;
      result.message = "presented " + r.presented->to_string() + ", the manifest says " +
                       expected.to_string() + "; not trusted";
      ++report.skipped;
    } else if (auto tv = m.trust(r.id, expected, validated_by); tv) {
      result.outcome = manifest_outcome::trusted;
      ++report.trusted;
    } else {
      result.outcome = manifest_outcome::error;
      result.error = tv.error();
      ++report.failed;
    }
    report.results.push_back(std::move(result));
  }
  for (size_t i = 0; i < entries.size(); ++i)
    if (!matched[i]) report.unmatched.push_back(addresses[i]);
  return report;
}

}  // namespace certfleet
