#!/usr/bin/env bash
# Builds the micro-benchmarks and the single-core handshake limit (RelWithDebInfo, in build-bench/),
# runs the Google Benchmark suite with 5 repetitions and certfleet-handshake-limit 5 times in each
# mode (full and resumed, interleaved so that a change in machine load hits both alike), and prints
# the medians. The machine is shared: the load average is recorded before and after every run, and
# everything (raw JSON, load log, medians) is kept in build-bench/bench-results/<UTC time>/.
#
# Usage: scripts/bench-micro.sh [--seconds N] [--runs N] [--no-build] [--filter REGEX]
#   --seconds N     length of each handshake-limit run (default 10)
#   --runs N        handshake-limit runs per mode (default 5)
#   --no-build      use the binaries already in build-bench/
#   --filter REGEX  only the micro-benchmarks matching REGEX (Google Benchmark's --benchmark_filter)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=10
runs=5
build=1
filter=.
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --filter) filter=$2; shift 2 ;;
    *) echo "unknown option '$1'; see the usage at the top of $0" >&2; exit 2 ;;
  esac
done

build_dir="build-bench"
if [[ $build == 1 ]]; then
  {
    cmake -S . -B "$build_dir" -DCERTFLEET_BUILD_BENCHMARKS=ON -DCERTFLEET_BUILD_TESTS=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo
    # Two cores shared with other engineers: build only these targets, two jobs.
    cmake --build "$build_dir" -j 2 --target certfleet-micro-bench certfleet-handshake-limit
  } >&2
fi
micro=$build_dir/benchmarks/certfleet-micro-bench
limit=$build_dir/benchmarks/certfleet-handshake-limit
for exe in "$micro" "$limit"; do
  [[ -x $exe ]] || { echo "$exe is missing; run without --no-build" >&2; exit 1; }
done

out=$build_dir/bench-results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
load_log=$out/loadavg.txt

# Runs "$@" with the load average written before and after, under the label $1.
measured() {
  local label=$1
  shift
  echo "$label before: $(cat /proc/loadavg)" >>"$load_log"
  "$@"
  echo "$label after:  $(cat /proc/loadavg)" >>"$load_log"
}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  lscpu | head -n 15
  grep -E '^(MemTotal|MemAvailable)' /proc/meminfo
} >"$out/machine.txt"

echo "micro-benchmarks (5 repetitions) ..." >&2
measured micro "$micro" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_filter="$filter" --benchmark_out="$out/micro.json" --benchmark_out_format=json \
  >"$out/micro.txt"

for ((i = 1; i <= runs; ++i)); do
  echo "handshake limit, run $i of $runs (full, then resumed, ${seconds} s each) ..." >&2
  measured "handshake full $i" "$limit" --seconds "$seconds" >>"$out/handshake-full.jsonl"
  measured "handshake resumed $i" "$limit" --seconds "$seconds" --resumed \
    >>"$out/handshake-resumed.jsonl"
done

python3 - "$out" <<'PY' | tee "$out/medians.md"
import json, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])

def fmt(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:,.2f}"

micro = json.loads((out / "micro.json").read_text())
print("| micro-benchmark | median items/s | median time per item (real) | CV of time |")
print("|---|---|---|---|")
rows = {}
for b in micro["benchmarks"]:
    if b.get("run_type") != "aggregate":
        continue
    rows.setdefault(b["run_name"], {})[b["aggregate_name"]] = b
for name, agg in rows.items():
    med = agg.get("median", {})
    cv = agg.get("cv", {})
    ips = med.get("items_per_second")
    t = med.get("real_time")
    unit = med.get("time_unit", "ns")
    cv_text = f"{100 * cv['real_time']:.1f} %" if "real_time" in cv else "-"
    print(f"| {name} | {fmt(ips) if ips else '-'} | {t:,.1f} {unit} | {cv_text} |")

print()
print("| handshake loop (one core, in memory) | runs | median handshakes/s (wall) | min | max "
      "| median handshakes per CPU second | resumed fraction |")
print("|---|---|---|---|---|---|---|")
for kind in ("full", "resumed"):
    lines = [json.loads(l) for l in (out / f"handshake-{kind}.jsonl").read_text().splitlines() if l]
    rates = [l["handshakes_per_second"] for l in lines]
    cpu_rates = [l["handshakes_per_cpu_second"] for l in lines]
    frac = statistics.median(l["resumed_fraction"] for l in lines)
    print(f"| {kind} | {len(rates)} | {fmt(statistics.median(rates))} | {fmt(min(rates))} | "
          f"{fmt(max(rates))} | {fmt(statistics.median(cpu_rates))} | {frac:.3f} |")
PY
echo >&2
echo "load average before/after each run ($load_log):" >&2
cat "$load_log" >&2
echo "$PWD/$out"
