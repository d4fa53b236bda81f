#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, and runs the whole test suite with ctest.
# Usage: scripts/test.sh [--sanitize]   (--sanitize: the ASan+UBSan build in build-sanitize/)
# Under CI (CI=true) it first compiles a Release (-O3) and a clang configuration (warning-free, not
# run: the same sources as the suite), then runs the suite, a 3-second run of every fuzz target
# (scripts/fuzz.sh) and the sanitizer build's suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# CI also runs every fuzz target briefly, which needs clang's libFuzzer runtime.
if [[ "${CI:-}" == true ]]; then export CERTFLEET_WITH_FUZZ=1; fi
scripts/install-deps.sh
# Object files are shared between checkouts of the project on this machine (CI clones afresh).
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_suite() {
  local build_dir
  build_dir=$(scripts/build.sh "$@" | tail -n 1)
  ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" --timeout 600
}
if [[ "${CI:-}" == true && "${1:-}" != --sanitize ]]; then
  for mode in --release --clang; do
    echo "== CI: compile only, warnings as errors: scripts/build.sh $mode"
    SECONDS=0
    scripts/build.sh "$mode" -DCERTFLEET_BUILD_BENCHMARKS=OFF > /dev/null
    echo "== CI: $mode built in ${SECONDS}s"
  done
fi
run_suite "$@"
if [[ "${CI:-}" == true && "${1:-}" != --sanitize ]]; then
  echo "== CI: a bounded run of every fuzz target: scripts/fuzz.sh 3"
  SECONDS=0
  CERTFLEET_FUZZ_JOBS=$(nproc) scripts/fuzz.sh 3
  echo "== CI: fuzz targets built and run in ${SECONDS}s"
  echo "== CI: the same suite under AddressSanitizer + UndefinedBehaviorSanitizer"
  run_suite --sanitize
fi
