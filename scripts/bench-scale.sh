#!/usr/bin/env bash
# Scale: certfleetd RSS, load time and idle CPU with N registered idle servers (default
# 10,000 and 100,000), seeded straight into RocksDB by certfleet-bench-seed; endpoints on 127.9.x.y
# and up, port 9, where nothing listens (loopback only). Prints a table; JSON in
# build-bench/bench-results/.
#
# Usage: scripts/bench-scale.sh [scale.py options]   (benchmarks/scale.py --help lists them)
#   e.g. scripts/bench-scale.sh --counts 100000 --restarts 3
# Installs what is missing and builds into build/ first.
set -euo pipefail
cd "$(dirname "$0")/.."
CERTFLEET_WITH_BENCH=1 scripts/install-deps.sh
build_dir=$(scripts/build.sh | tail -n 1)
mkdir -p build-bench/bench-results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
exec python3 benchmarks/scale.py --build-dir "$build_dir" \
  --out "build-bench/bench-results/scale-$stamp.json" "$@"
