#!/usr/bin/env bash
# The crash-kill harness for longer than CI runs it: kills certfleetd with SIGKILL at random
# moments during a workload, restarts it and checks the invariants (tests/crash/crash_kill_test.cpp).
# Usage: scripts/crash-kill.sh [CYCLES] [SEED]     (defaults: 1000 cycles, a time-based seed)
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-1000}"
build_dir="$(bash scripts/build.sh)"
cmake --build "$build_dir" --target crash_tests certfleet certfleetd certfleet-agent >&2
CERTFLEET_CRASH_CYCLES="$cycles" CERTFLEET_CRASH_SEED="${2:-0}" \
  "$build_dir/tests/crash/crash_tests" --gtest_brief=1
