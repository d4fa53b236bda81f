#!/usr/bin/env bash
# Builds the libFuzzer protocol fuzzer with clang in build-fuzz/ and runs it for a bounded time.
# The seed corpus in tests/fuzz/corpus/ is read but never written: new inputs go to
# build-fuzz/corpus/, crashes to build-fuzz/artifacts/ (copy a crash into tests/fuzz/corpus/ to
# keep replaying it in every ctest run once fixed).
# Usage: scripts/fuzz.sh SECONDS [extra libFuzzer flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 1 || ! "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh SECONDS [libFuzzer flags...]" >&2
  exit 2
fi
seconds=$1
shift
if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ not found; run CERTFLEET_WITH_FUZZ=1 scripts/install-deps.sh" >&2
  exit 1
fi
build_dir=build-fuzz
jobs=${CERTFLEET_FUZZ_JOBS:-2}
{
  cmake -S . -B "$build_dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCERTFLEET_FUZZ=ON -DCERTFLEET_BUILD_TESTS=OFF -DCERTFLEET_BUILD_BENCHMARKS=OFF
  cmake --build "$build_dir" --target protocol_fuzz -j "$jobs"
} >&2
mkdir -p "$build_dir/corpus" "$build_dir/artifacts"
# Frames larger than a few KiB only add body bytes the decoders never look at.
exec "$build_dir/tests/fuzz/protocol_fuzz" -max_total_time="$seconds" -max_len=4096 \
  -artifact_prefix="$build_dir/artifacts/" -print_final_stats=1 "$@" \
  "$build_dir/corpus" tests/fuzz/corpus
