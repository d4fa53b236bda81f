#!/usr/bin/env bash
# Configures and builds certfleet with warnings as errors. The build output goes to stderr; the last
# line on stdout is the build directory.
# Usage: scripts/build.sh [MODE] [extra cmake -D options...]
#   (none)       RelWithDebInfo with g++ in build/
#   --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer in build-sanitize/
#   --release    Release (-O3) in build-release/
#   --clang      RelWithDebInfo with clang++ in build-clang/
#   --type T     build type T (Debug, Release, RelWithDebInfo, MinSizeRel) in build-<t>/
# ccache is used when installed (scripts/install-deps.sh installs it). CERTFLEET_JOBS sets the
# parallelism (default: the number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=build
opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCERTFLEET_WERROR=ON)
case "${1:-}" in
  --sanitize)
    shift
    build_dir=build-sanitize
    opts+=(-DCERTFLEET_SANITIZE=ON -DCERTFLEET_BUILD_BENCHMARKS=OFF)
    ;;
  --release)
    shift
    build_dir=build-release
    opts+=(-DCMAKE_BUILD_TYPE=Release)
    ;;
  --clang)
    shift
    build_dir=build-clang
    opts+=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++)
    ;;
  --type)
    [[ $# -ge 2 ]] || { echo "build.sh: --type needs a build type" >&2; exit 2; }
    build_dir=build-${2,,}
    opts+=(-DCMAKE_BUILD_TYPE="$2")
    shift 2
    ;;
esac
if command -v ccache >/dev/null; then
  opts+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
{
  cmake -S . -B "$build_dir" "${opts[@]}" "$@"
  cmake --build "$build_dir" -j "${CERTFLEET_JOBS:-$(nproc)}"
} >&2
echo "$PWD/$build_dir"
