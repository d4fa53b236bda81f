#include "apps/cli/output.hpp"

#include <iomanip>
#include <iostream>

namespace certfleet::cli {

namespace {
bool json_errors_on = false;
}  // namespace

void set_json_errors(bool on) {
  json_errors_on = on;
}

bool json_errors() {
  return json_errors_on;
}

int report(const caf::error& err, const std::string& program) {
  int rc = exit_code_for(err);
  if (json_errors_on) {
    auto code = code_of(err);
    std::cerr << nlohmann::json{{"code", code == ec::none ? "failure" : to_string(code)},
                                {"message", describe(err)},
                                {"exit_code", rc},
                                {"program", program}}
                     .dump()
              << '\n';
  } else {
    std::cerr << program << ": " << describe(err) << '\n';
  }
  return rc;
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
