#!/usr/bin/env bash
# Builds the protocol, agent and storage test suites with ThreadSanitizer in build-tsan/ and runs
# them (docs/reliability.md, "Data races"). Any report fails the run; the suppressions in
# tests/tsan.supp each say why they are there. The actor suite is not run: CAF comes from Debian
# uninstrumented, so every message handed between threads is reported (docs/reliability.md).
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
suites=(protocol_tests agent_tests storage_tests)
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
  if ! "$build_dir/tests/$dir/$suite" --gtest_brief=1 "$@"; then
    echo "tsan.sh: $suite failed or ThreadSanitizer reported a race" >&2
    status=1
  fi
  echo "== $suite: ${SECONDS}s" >&2
done
exit $status
