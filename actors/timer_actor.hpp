// The timer actor: the daemon's periodic work in one place. Each job is a message sent to the actor
// that does the work, every `period`, the first time one period after start. The work itself never
// runs here, so a slow job delays nothing else.
//
// The daemon's jobs (`daemon_jobs`): the credential sweep (custody actor) and event retention (the
// storage actor trims the event log). Renewal prompts of the certificate lifecycle are the next
// job: a target actor and a period appended in `daemon_jobs`.
//
// Thread: a scheduler thread; it only sends messages. (stop_atom) quits.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/message.hpp>

#include "config/settings.hpp"

namespace certfleet {

struct periodic_job {
  std::string name;  // for the log
  std::chrono::milliseconds period;
  caf::actor target;
  caf::message msg;
};

/// The daemon's periodic jobs for `cfg`, sent to `custody` and `storage`.
std::vector<periodic_job> daemon_jobs(const daemon_settings& cfg, const caf::actor& custody,
                                      const caf::actor& storage);

caf::actor spawn_timer_actor(caf::actor_system& sys, std::vector<periodic_job> jobs);

}  // namespace certfleet
