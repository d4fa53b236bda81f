#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ and runs each for a bounded time:
# protocol (frames and messages), control_request, config, thumbprint, records, sealed, manifest,
# tls_sessions, agent_state and agent_records (tests/fuzz/targets.hpp and state_targets.hpp say
# what each checks). The seed corpora in tests/fuzz/corpus/ are read
# but never written: new inputs go to build-fuzz/corpus/<target>/, crashes to
# build-fuzz/artifacts/<target>/ (copy a crash into the target's seed corpus to keep replaying it
# in every ctest run once fixed). Prints each target's executions at the end.
# Usage: scripts/fuzz.sh SECONDS_PER_TARGET [TARGET...] [-- libFuzzer flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 1 || ! "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh SECONDS_PER_TARGET [TARGET...] [-- libFuzzer flags...]" >&2
  exit 2
fi
seconds=$1
shift
all_targets=(protocol control_request config thumbprint records sealed manifest tls_sessions agent_state
  agent_records)
targets=()
while [[ $# -gt 0 && "$1" != "--" ]]; do
  targets+=("$1")
  shift
done
[[ $# -gt 0 ]] && shift
[[ ${#targets[@]} -eq 0 ]] && targets=("${all_targets[@]}")
if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ not found; run CERTFLEET_WITH_FUZZ=1 scripts/install-deps.sh" >&2
  exit 1
fi
build_dir=${CERTFLEET_FUZZ_BUILD_DIR:-build-fuzz}
jobs=${CERTFLEET_FUZZ_JOBS:-2}
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
{
  cmake -S . -B "$build_dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCERTFLEET_FUZZ=ON -DCERTFLEET_BUILD_TESTS=OFF -DCERTFLEET_BUILD_BENCHMARKS=OFF "${launcher[@]}"
  cmake --build "$build_dir" -j "$jobs" --target "${targets[@]/%/_fuzz}"
} >&2
status=0
for t in "${targets[@]}"; do
  seeds=tests/fuzz/corpus/$t
  # The protocol seeds are the frame files at the top of tests/fuzz/corpus/.
  [[ $t == protocol ]] && seeds=tests/fuzz/corpus
  mkdir -p "$build_dir/corpus/$t" "$build_dir/artifacts/$t"
  # Frames larger than a few KiB only add body bytes the decoders never look at. One process per
  # corpus: -reload=0 spares it rereading its own output directory every few seconds.
  log="$build_dir/artifacts/$t/last-run.log"
  if ! "$build_dir/tests/fuzz/${t}_fuzz" -max_total_time="$seconds" -max_len=4096 -reload=0 \
    -artifact_prefix="$build_dir/artifacts/$t/" -print_final_stats=1 "$@" \
    "$build_dir/corpus/$t" "$seeds" >"$log" 2>&1; then
    echo "fuzz.sh: $t found a failure; see $log and $build_dir/artifacts/$t/" >&2
    status=1
  fi
  runs=$(grep -a -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  echo "$t: ${runs:-?} executions in ${seconds} s"
done
exit $status
