#include "common/error.hpp"

#include <caf/atom.hpp>

namespace certfleet {

const char* to_string(ec code) {
  switch (code) {
    case ec::none:
      return "none";
    case ec::io_error:
      return "io_error";
    case ec::insecure_permissions:
      return "insecure_permissions";
    case ec::not_found:
      return "not_found";
    case ec::already_exists:
      return "already_exists";
    case ec::corrupt_data:
      return "corrupt_data";
    case ec::tampered:
      return "tampered";
    case ec::bad_thumbprint:
      return "bad_thumbprint";
    case ec::bad_config:
      return "bad_config";
    case ec::crypto_failure:
      return "crypto_failure";
    case ec::storage_failure:
      return "storage_failure";
    case ec::disk_full:
      return "disk_full";
    case ec::protocol_error:
      return "protocol_error";
    case ec::frame_too_large:
      return "frame_too_large";
    case ec::tls_failure:
      return "tls_failure";
    case ec::permission_denied:
      return "permission_denied";
    case ec::invalid_argument:
      return "invalid_argument";
    case ec::timeout:
      return "timeout";
    case ec::invalid_state:
      return "invalid_state";
  }
  return "unknown";
}

caf::error make_error(ec code, std::string what) {
  return caf::error{static_cast<uint8_t>(code), caf::atom("certfleet"),
                    caf::make_message(std::move(what))};
}

ec code_of(const caf::error& err) {
  if (!err || err.category() != caf::atom("certfleet")) return ec::none;
  return static_cast<ec>(err.code());
}

std::string describe(const caf::error& err) {
  if (!err) return "no error";
  const auto& ctx = err.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0)) return ctx.get_as<std::string>(0);
  if (err.category() == caf::atom("certfleet")) return to_string(static_cast<ec>(err.code()));
  return "error " + std::to_string(err.code()) + " in category " + caf::to_string(err.category());
}

}  // namespace certfleet
