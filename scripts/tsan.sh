#!/usr/bin/env bash
# Builds the actor, protocol, agent and storage test suites with ThreadSanitizer in build-tsan/ and
# runs them (docs/reliability.md, "Data races"). Any report fails the run; the suppressions in
# tests/tsan.supp each say why they are there. The actor suite runs against CAF built with
# ThreadSanitizer by scripts/tsan-caf.sh (once, from Debian's source package; reused afterwards):
# the uninstrumented Debian library would have every message handed between threads reported.
# Usage: scripts/tsan.sh [extra GoogleTest arguments, e.g. --gtest_filter=...]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${CERTFLEET_TSAN_BUILD_DIR:-build-tsan}
jobs=${CERTFLEET_JOBS:-$(nproc)}
opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCERTFLEET_WERROR=ON -DCERTFLEET_TSAN=ON
      -DCERTFLEET_BUILD_BENCHMARKS=OFF)
if command -v ccache >/dev/null; then
  opts+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
suites=(actors_tests protocol_tests agent_tests storage_tests)
caf_lib=$(scripts/tsan-caf.sh | tail -n 1)
{
  cmake -S . -B "$build_dir" "${opts[@]}"
  # The agent tests run the real certfleet-agent binary.
  cmake --build "$build_dir" -j "$jobs" --target "${suites[@]}" certfleet-agent
} >&2
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp ${TSAN_OPTIONS:-}"
status=0
for suite in "${suites[@]}"; do
  dir=${suite%_tests}
  echo "== ThreadSanitizer: $suite" >&2
  SECONDS=0
  # Every program linking CAF loads the instrumented build (the same soname) instead.
  if ! LD_LIBRARY_PATH=$caf_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
    "$build_dir/tests/$dir/$suite" --gtest_brief=1 "$@"; then
    echo "tsan.sh: $suite failed or ThreadSanitizer reported a race" >&2
    status=1
  fi
  echo "== $suite: ${SECONDS}s" >&2
done
exit $status
