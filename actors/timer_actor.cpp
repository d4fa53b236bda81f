#include "actors/timer_actor.hpp"

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/custody_actor.hpp"

namespace certfleet {
namespace {

/// How often the event log is trimmed to `event_retention_count` / `event_retention_days`.
constexpr std::chrono::minutes event_trim_period{1};

caf::behavior timer(caf::event_based_actor* self, std::vector<periodic_job> jobs) {
  for (size_t i = 0; i < jobs.size(); ++i)
    self->delayed_send(self, jobs[i].period, tick_atom::value, i);
  return {
      [=](tick_atom, size_t i) {
        if (i >= jobs.size()) return;
        self->send(jobs[i].target, jobs[i].msg);
        self->delayed_send(self, jobs[i].period, tick_atom::value, i);
      },
      [=](stop_atom) { self->quit(); },
  };
}

}  // namespace

std::vector<periodic_job> daemon_jobs(const daemon_settings& cfg, const caf::actor& custody,
                                      const caf::actor& storage) {
  std::vector<periodic_job> jobs;
  jobs.push_back({"credential sweep", credential_sweep_period(cfg), custody,
                  caf::make_message(sweep_atom::value)});
  jobs.push_back(
      {"event trim", event_trim_period, storage, caf::make_message(trim_events_atom::value)});
  return jobs;
}

caf::actor spawn_timer_actor(caf::actor_system& sys, std::vector<periodic_job> jobs) {
  return sys.spawn(timer, std::move(jobs));
}

}  // namespace certfleet
