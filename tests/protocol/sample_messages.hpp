// One representative instance of every protocol message type, shared by the round-trip tests and
// the fuzz seed corpus (tests/fuzz/corpus/<type>.bin holds each, framed).
#pragma once

#include <array>
#include <vector>

#include "protocol/messages.hpp"

namespace certfleet::testing {

inline thumbprint sample_thumbprint(uint8_t seed) {
  std::array<uint8_t, thumbprint::size> raw{};
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(seed + i * 7);
  return thumbprint{raw};
}

inline std::vector<wire::message> sample_messages() {
  wire::register_request reg;
  reg.account = "svc-certfleet";
  reg.password = to_secret("correct horse battery staple");
  reg.manager_thumbprint = sample_thumbprint(0x10);
  reg.manager_name = "manager-eu-1";

  wire::inventory inv;
  inv.jobs.push_back({"nightly-sql", "full", "success", 1764000000123, 52428800000});
  inv.jobs.push_back({"hourly-files", "incremental", "warning", -1, 0});

  return {
      wire::hello{1, 1, "manager-eu-1"},
      reg,
      wire::registered{sample_thumbprint(0x80), "srv-7f3a"},
      wire::denied{wire::denial_reason::insufficient_role, "account svc-certfleet is not an admin"},
      wire::collect{},
      inv,
      wire::ping{0x0123456789ABCDEFull},
      wire::pong{0x0123456789ABCDEFull},
      wire::error_message{17, "inventory temporarily unavailable"},
      wire::rotate_manager_certificate{{0x30, 0x82, 0x01, 0x0A, 0x02, 0x01, 0x01}},
      wire::manager_certificate_stored{sample_thumbprint(0x21)},
      wire::retire_manager_certificate{sample_thumbprint(0x42)},
      wire::manager_certificate_retired{sample_thumbprint(0x42)},
      wire::rotation_refused{wire::message_type::rotate_manager_certificate,
                             "the certificate is not valid yet"},
  };
}

}  // namespace certfleet::testing
