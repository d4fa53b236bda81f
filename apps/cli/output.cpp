#include "apps/cli/output.hpp"

#include <iomanip>
#include <iostream>

namespace certfleet::cli {

int report(const caf::error& err, const std::string& program) {
  std::cerr << program << ": " << describe(err) << '\n';
  return exit_code_for(err);
}

nlohmann::json to_json(const certificate_summary& s) {
  return {
      {"friendly_name", s.friendly_name},
      {"subject", s.subject},
      {"issuer", s.issuer},
      {"serial", s.serial},
      {"not_before", s.not_before},
      {"not_after", s.not_after},
      {"key_algorithm", s.key_algorithm},
      {"sha256", s.sha256.to_string()},
      {"sha1", s.sha1.to_string()},
  };
}

void print_summary(std::ostream& out, const certificate_summary& s, const std::string& heading) {
  auto row = [&](const char* label, const std::string& value) {
    out << "  " << std::left << std::setw(20) << label << value << '\n';
  };
  out << heading << '\n';
  row("Friendly name:", s.friendly_name);
  row("Subject:", s.subject);
  row("Issuer:", s.issuer);
  row("Serial number:", s.serial);
  row("Valid from:", s.not_before);
  row("Valid until:", s.not_after);
  row("Key algorithm:", s.key_algorithm);
  row("SHA-256 thumbprint:", s.sha256.to_string());
  row("SHA-1 thumbprint:", s.sha1.to_string());
}

}  // namespace certfleet::cli
