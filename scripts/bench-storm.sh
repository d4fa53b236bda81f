#!/usr/bin/env bash
# Connection storms over the real binaries: a simulated fleet
# (certfleet-agent fleet) and certfleetd on this machine, loopback only. Registration, connect
# (daemon restart, full handshakes) and resumed (fleet connections dropped, daemon kept) storms,
# the single-core handshake limit right before each connect storm, and daemon RSS / load time with
# many idle servers. Results: a table on stdout, JSON in build-bench/bench-results/storm-<UTC>.json,
# a PNG of the largest connect storm in benchmarks/plots/ (needs gnuplot-nox).
#
# Usage: scripts/bench-storm.sh [storm.py options]   (benchmarks/storm.py --help lists them)
#   e.g. scripts/bench-storm.sh --counts 1000,2000 --runs 3 --scale 10000
#   --rotation adds the rotation storm (`cert renew` over all N connected servers)
# Installs what is missing (with python3 and gnuplot-nox) and builds into build/ first.
set -euo pipefail
cd "$(dirname "$0")/.."
CERTFLEET_WITH_BENCH=1 scripts/install-deps.sh
build_dir=$(scripts/build.sh | tail -n 1)
exec python3 benchmarks/storm.py --build-dir "$build_dir" --bench-dir "$build_dir" "$@"
