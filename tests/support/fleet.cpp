#include "tests/support/fleet.hpp"

#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace certfleet::test {

agent_fleet::agent_fleet(const std::filesystem::path& dir, int count,
                         const std::string& admin_password,
                         const std::vector<std::string>& extra_args) {
  auto password_file = dir / "admin.pw";
  std::ofstream{password_file} << admin_password << '\n';
  std::filesystem::permissions(
      password_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::vector<std::string> argv{binary("apps/agent/certfleet-agent"),
                                "--state-dir",
                                (dir / "fleet").string(),
                                "fleet",
                                "--count",
                                std::to_string(count),
                                "--admin-password-file",
                                password_file.string()};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<child>(argv, dir / "fleet.log");
  auto manifest_file = dir / "fleet" / "manifest.json";
  if (!wait_until([&] { return std::filesystem::exists(manifest_file); }, std::chrono::seconds{60}))
    throw std::runtime_error("the fleet wrote no manifest within 60 s:\n" + process_->log());
  std::ifstream in{manifest_file};
  auto manifest = nlohmann::json::parse(in);
  for (const auto& e : manifest["endpoints"])
    endpoints_.push_back({e["address"].get<std::string>(), e["port"].get<uint16_t>(),
                          e["thumbprint"].get<std::string>()});
  if (endpoints_.size() != static_cast<size_t>(count))
    throw std::runtime_error("the fleet's manifest lists " + std::to_string(endpoints_.size()) +
                             " endpoints, not " + std::to_string(count) + ":\n" + manifest.dump(2));
}

}  // namespace certfleet::test
