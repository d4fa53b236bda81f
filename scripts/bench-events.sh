#!/usr/bin/env bash
# Events per second through the real event bus (targets in benchmarks/RESULTS.md; one in-process
# subscriber; 100 subscribers reported too), plus replay and the cost of append_events alone.
# Builds certfleet-events-bench (RelWithDebInfo, in build-bench/), runs it, and prints the table.
# The machine is shared: the load average before and after is recorded, and everything (JSON,
# table, load, machine) is kept in build-bench/bench-results/events-<UTC time>/.
#
# Usage: scripts/bench-events.sh [--no-build] [certfleet-events-bench options]
#   e.g. scripts/bench-events.sh --seconds 5 --runs 5 --subscribers 1,100
#   (build-bench/benchmarks/certfleet-events-bench --help lists the options)
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
if [[ ${1:-} == --no-build ]]; then
  build=0
  shift
fi

build_dir="build-bench"
if [[ $build == 1 ]]; then
  CERTFLEET_WITH_BENCH=1 scripts/install-deps.sh >&2
  {
    cmake -S . -B "$build_dir" -DCERTFLEET_BUILD_BENCHMARKS=ON -DCERTFLEET_BUILD_TESTS=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo
    # Two cores shared with other engineers: build only this target, two jobs.
    cmake --build "$build_dir" -j 2 --target certfleet-events-bench
  } >&2
fi
exe=$build_dir/benchmarks/certfleet-events-bench
[[ -x $exe ]] || { echo "$exe is missing; run without --no-build" >&2; exit 1; }

out=$build_dir/bench-results/events-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  lscpu | grep 'Model name' || true
  grep -E '^(MemTotal|MemAvailable)' /proc/meminfo
  echo "command: $exe $* --json $out/events.json"
} >"$out/machine.txt"

echo "load before: $(cat /proc/loadavg)" >"$out/loadavg.txt"
"$exe" "$@" --json "$out/events.json" | tee "$out/events.txt" | grep '^|'
echo "load after:  $(cat /proc/loadavg)" >>"$out/loadavg.txt"

echo >&2
cat "$out/machine.txt" "$out/loadavg.txt" >&2
echo "$PWD/$out"
