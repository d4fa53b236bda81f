// Failpoints: named places in the code where a test build can inject a fault (die as SIGKILL
// would, stall, run a hook). In a normal build `CERTFLEET_FAILPOINT(name)` compiles to nothing and
// this header declares nothing else; only targets linked with `certfleet_failpoint` (which defines
// CERTFLEET_TESTING for them) have failpoints, e.g. `certfleetd-testing` and the unit tests.
//
// A test arms a failpoint in-process with `failpoint::arm`, or, for a whole test binary such as
// certfleetd-testing, through the environment variable CERTFLEET_FAILPOINTS, read once at start
// by the failpoint library itself (never by production code): a comma-separated list of
// `name=action`, where action is `kill` (raise SIGKILL) or `sleep:MS`.
//
// Thread-safety: every function may be called from any thread; an action runs on the thread that
// reached the failpoint.
#pragma once

#ifdef CERTFLEET_TESTING

#include <functional>
#include <string>

#include "common/error.hpp"

namespace certfleet::failpoint {

/// Runs the action armed for `name`, if any.
void hit(const char* name);
/// Arms `name` with `action` (replacing an earlier one).
void arm(const std::string& name, std::function<void()> action);
void disarm(const std::string& name);
/// Arms every entry of a `name=action,...` list (see the file comment); `ec::invalid_argument`
/// naming the bad entry otherwise (the entries before it stay armed).
caf::error arm_from_spec(const std::string& spec);

}  // namespace certfleet::failpoint

#define CERTFLEET_FAILPOINT(name) ::certfleet::failpoint::hit(name)

#else

#define CERTFLEET_FAILPOINT(name) static_cast<void>(0)

#endif
