// The synthetic job inventory of a simulated backup server.
//
// Deterministic per endpoint and changing over time, so that a manager's collection is observable:
// the job set (2 to 8 jobs: name, type, period of 3 to 10 minutes, phase) is derived from a hash
// of the server id; each job "runs" once per period, and the result and size of run number n are
// derived from hash(server id, job, n). Two agents with the same server id at the same time report
// the same inventory; the same agent reports a different one a few minutes later.
//
// Thread-safety: pure function.
#pragma once

#include <chrono>
#include <string>

#include "protocol/messages.hpp"

namespace certfleet::agent {

wire::inventory synthetic_inventory(const std::string& server_id,
                                    std::chrono::system_clock::time_point now);

}  // namespace certfleet::agent
