#include "actors/legacy_servers.hpp"

#include <algorithm>

#include "protocol/messages.hpp"

namespace certfleet {

uint8_t offered_version(const server_record& rec) {
  return is_legacy(rec) ? wire::legacy_protocol_version : wire::protocol_version;
}

std::optional<uint8_t> common_version(uint8_t min_version, uint8_t max_version) {
  auto high = std::min(max_version, wire::protocol_version);
  auto low = std::max(min_version, wire::min_protocol_version);
  if (high < low) return std::nullopt;
  return high;
}

server_auth auth_for(uint8_t version) {
  return version == wire::legacy_protocol_version ? server_auth::legacy_credentials
                                                  : server_auth::certificates;
}

}  // namespace certfleet
