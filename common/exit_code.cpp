#include "common/exit_code.hpp"

namespace certfleet {

exit_code exit_code_for(const caf::error& err) {
  switch (code_of(err)) {
    case ec::none:
      return err ? exit_failure : exit_ok;
    case ec::invalid_argument:
    case ec::bad_thumbprint:
      return exit_usage;
    case ec::not_found:
      return exit_not_found;
    case ec::insecure_permissions:
      return exit_insecure;
    case ec::bad_config:
      return exit_bad_config;
    case ec::io_error:
    case ec::disk_full:
    case ec::storage_failure:
    case ec::corrupt_data:
    case ec::tampered:
      return exit_storage;
    case ec::protocol_error:
    case ec::frame_too_large:
    case ec::tls_failure:
    case ec::timeout:
      return exit_unreachable;
    case ec::permission_denied:
    case ec::invalid_state:
    case ec::already_exists:
      return exit_refused;
    case ec::crypto_failure:
      return exit_failure;
  }
  return exit_failure;
}

}  // namespace certfleet
