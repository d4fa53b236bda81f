#include "agent/faults.hpp"

#include <algorithm>

namespace certfleet::agent {

namespace {

struct fault_name {
  fault_kind kind;
  const char* name;
};
constexpr fault_name fault_names[] = {
    {fault_kind::offline, "offline"},
    {fault_kind::online, "online"},
    {fault_kind::regenerate, "regenerate"},
    {fault_kind::stall, "stall"},
    {fault_kind::slow_handshake, "slow-handshake"},
    {fault_kind::drop_after, "drop-after"},
    {fault_kind::deny_registrations, "deny-registrations"},
    {fault_kind::accept_registrations, "accept-registrations"},
    {fault_kind::clear, "clear"},
};

}  // namespace

const char* to_string(fault_kind k) {
  for (const auto& f : fault_names)
    if (f.kind == k) return f.name;
  return "unknown";
}

caf::expected<fault_kind> parse_fault_kind(const std::string& text) {
  for (const auto& f : fault_names)
    if (text == f.name) return f.kind;
  std::string all;
  for (const auto& f : fault_names) all += std::string(all.empty() ? "" : ", ") + f.name;
  return make_error(ec::invalid_argument, "unknown fault '" + text + "'; use one of: " + all);
}

bool takes_value(fault_kind k) {
  return k == fault_kind::slow_handshake || k == fault_kind::drop_after;
}

std::unique_ptr<connection_faults> connection_faults::from(const fault_settings& f) {
  if (f.slow.count() <= 0 && f.drop_after_bytes == 0) return nullptr;
  auto c = std::make_unique<connection_faults>();
  c->slow = f.slow;
  c->drop_after = f.drop_after_bytes;
  return c;
}

size_t connection_faults::writable(size_t want) const {
  if (drop_after == 0) return want;
  return static_cast<size_t>(std::min<uint64_t>(want, drop_after - written));
}

bool connection_faults::wrote(size_t n) {
  written += n;
  return drop_after > 0 && written >= drop_after;
}

}  // namespace certfleet::agent
