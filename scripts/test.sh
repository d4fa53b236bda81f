#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with ctest.
# Usage: scripts/test.sh [--sanitize]   (--sanitize: the ASan+UBSan build in build-sanitize/)
# Under CI (CI=true) the sanitizer build's suite runs as well, after the normal one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_suite() {
  local build_dir
  build_dir=$(scripts/build.sh "$@" | tail -n 1)
  ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" --timeout 600
}
run_suite "$@"
if [[ "${CI:-}" == true && "${1:-}" != --sanitize ]]; then
  echo "== CI: the same suite under AddressSanitizer + UndefinedBehaviorSanitizer"
  run_suite --sanitize
fi
