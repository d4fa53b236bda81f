// The agent's side of the manager certificate rotation (agent/endpoint.hpp, file comment).
#include <spdlog/spdlog.h>

#include "agent/endpoint.hpp"
#include "crypto/manager_rotation.hpp"

namespace certfleet::agent {
namespace {

// Named value linking a successor certificate to the one it replaced.
std::string successor_key(const thumbprint& successor) {
  return "manager.successor_of." + successor.to_string();
}

wire::message refused(wire::message_type request, std::string detail) {
  return wire::rotation_refused{request, std::move(detail)};
}

}  // namespace

wire::message endpoint::store_successor(const thumbprint& current,
                                        const std::vector<uint8_t>& certificate_der) {
  constexpr auto request = wire::message_type::rotate_manager_certificate;
  if (!is_manager(current))
    return refused(request, "this session's certificate is not a registered manager's");
  auto checked =
      check_successor_certificate(certificate_der, options_.clock(), std::chrono::seconds{300});
  if (!checked) {
    spdlog::warn("endpoint {}: manager {} offered a successor certificate that was refused: {}",
                 options_.index, current.to_string(), describe(checked.error()));
    return refused(request, describe(checked.error()));
  }
  const auto& next = *checked;
  if (next == current)
    return refused(request, "the offered certificate is the one this session already uses");
  std::string name = "certfleet manager";
  if (auto all = store_->managers(options_.index))
    for (const auto& m : *all)
      if (m.manager_thumbprint == current) name = m.manager_name;
  auto now =
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.clock().time_since_epoch())
          .count();
  // The link first, then the certificate (synced): a manager certificate is never stored without
  // the record of which one it replaced.
  if (auto err =
          store_->put_values({{options_.index, successor_key(next), current.to_string()}}, true);
      err) {
    spdlog::error("endpoint {}: cannot store the successor of manager {}: {}", options_.index,
                  current.to_string(), describe(err));
    return refused(request, "the backup server cannot store the certificate");
  }
  if (auto err = store_->put_manager(options_.index, {next, name, now, certificate_der})) {
    spdlog::error("endpoint {}: cannot store the successor of manager {}: {}", options_.index,
                  current.to_string(), describe(err));
    return refused(request, "the backup server cannot store the certificate");
  }
  managers_.insert(next);
  spdlog::info("endpoint {}: manager {} stored its successor certificate {}", options_.index,
               current.to_string(), next.to_string());
  return wire::manager_certificate_stored{next};
}

wire::message endpoint::retire_predecessor(const thumbprint& current, const thumbprint& retired) {
  constexpr auto request = wire::message_type::retire_manager_certificate;
  auto link = store_->get_value(options_.index, successor_key(current));
  if (!link) return refused(request, "the backup server cannot read its manager records");
  if (!*link || **link != retired.to_string())
    return refused(request, "certificate " + retired.to_string() +
                                " was not replaced by this session's certificate " +
                                current.to_string() + "; only a predecessor can be retired");
  if (is_manager(retired)) {
    auto removed = revoke(retired);
    if (!removed) {
      spdlog::error("endpoint {}: cannot forget manager {}: {}", options_.index,
                    retired.to_string(), describe(removed.error()));
      return refused(request, "the backup server cannot remove the certificate");
    }
    spdlog::info("endpoint {}: manager certificate {} retired by its successor {}", options_.index,
                 retired.to_string(), current.to_string());
  }
  return wire::manager_certificate_retired{retired};
}

}  // namespace certfleet::agent
