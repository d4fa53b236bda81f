#!/usr/bin/env bash
# Installs every Debian 12 package certfleet needs to build, test and benchmark.
# Idempotent: packages already present are skipped, and apt is only called when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang-format ccache clang
  libcaf-dev libbotan-2-dev librocksdb-dev rocksdb-tools
  libspdlog-dev libfmt-dev libtomlplusplus-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  openssl socat
  # the Prometheus endpoint and its end-to-end test (a real Prometheus server, promtool)
  prometheus-cpp-dev prometheus
  # the renewal prompt's end-to-end test moves the daemon's clock with libfaketime
  faketime
  # the systemd daemon (sd_notify, journald) and its unit check
  libsystemd-dev systemd
  # man pages at build time, the .deb (dpkg-shlibdeps) and its install test
  help2man dpkg-dev file
  # the half-open peer test drops an endpoint's traffic in a network namespace of its own (as root)
  nftables iproute2
)
# The storm benchmark (benchmarks/storm.py) and its plot: scripts/bench-storm.sh asks for them.
if [[ "${CERTFLEET_WITH_BENCH:-0}" == 1 ]]; then packages+=(python3 gnuplot-nox); fi
if [[ "${CERTFLEET_WITH_FUZZ:-0}" == 1 ]]; then packages+=(libclang-rt-14-dev); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if ((EUID != 0)); then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
