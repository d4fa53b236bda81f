#include "actors/manager_identities.hpp"

namespace certfleet {

identity manager_identities::current() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return current_;
}

std::optional<identity> manager_identities::previous() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return previous_;
}

identity manager_identities::for_server(const std::string& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (previous_ && pending_.count(id) != 0) return *previous_;
  return current_;
}

std::optional<identity> manager_identities::successor_for(const std::string& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (previous_ && pending_.count(id) != 0) return current_;
  return std::nullopt;
}

std::optional<thumbprint> manager_identities::drop_owed(const std::string& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (retired_ && owed_.count(id) != 0) return retired_;
  return std::nullopt;
}

void manager_identities::begin(identity previous, identity current, std::set<std::string> pending) {
  std::lock_guard<std::mutex> guard{mtx_};
  previous_ = std::move(previous);
  current_ = std::move(current);
  pending_ = std::move(pending);
  retired_.reset();
  owed_.clear();
}

void manager_identities::join(const std::string& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (previous_) pending_.insert(id);
}

void manager_identities::moved(const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (const auto& id : ids) pending_.erase(id);
}

void manager_identities::retire(const thumbprint& retired, std::set<std::string> owed) {
  std::lock_guard<std::mutex> guard{mtx_};
  previous_.reset();
  pending_.clear();
  retired_ = retired;
  owed_ = std::move(owed);
}

void manager_identities::dropped(const std::string& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  owed_.erase(id);
}

}  // namespace certfleet
