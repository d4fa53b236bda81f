#!/usr/bin/env bash
# Configures and builds certfleet into build/ (or build-sanitize/ with --sanitize).
# Build output goes to stderr; the last line on stdout is the build directory.
# Usage: scripts/build.sh [--sanitize] [extra cmake -D options...]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=build
opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [[ "${1:-}" == "--sanitize" ]]; then
  shift
  build_dir=build-sanitize
  opts+=(-DCERTFLEET_SANITIZE=ON -DCERTFLEET_BUILD_BENCHMARKS=OFF)
fi
{
  cmake -S . -B "$build_dir" "${opts[@]}" "$@"
  cmake --build "$build_dir" -j "$(nproc)"
} >&2
echo "$PWD/$build_dir"
