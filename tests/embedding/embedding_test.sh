#!/usr/bin/env bash
# Embedding, as a user of the installed package does it: installs this build tree into a temporary
# prefix, builds examples/ against that prefix with find_package(certfleet) (no path into this
# tree), starts the installed certfleetd with a one-endpoint simulated fleet, and checks that
# examples/subscribe_events prints the trust change of adding that endpoint with its published
# thumbprint.
#   embedding_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source=$2
tmp=$(mktemp -d /tmp/certfleet-embedding.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for log in "$tmp"/*.log; do echo "== $log" >&2; tail -n 20 "$log" >&2; done
  exit 1
}

echo "== install into $tmp/prefix"
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log" || fail "cmake --install"
[[ -f $tmp/prefix/lib/cmake/certfleet/certfleet-config.cmake ]] || fail "no CMake package installed"
[[ -f $tmp/prefix/include/certfleet/actors/manager.hpp ]] || fail "no headers installed"

echo "== build examples/ against the prefix"
# Only the prefix is given: a reference into the build or source tree would fail the build.
cmake -S "$source/examples" -B "$tmp/examples" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$tmp/configure.log" 2>&1 || fail "configure examples"
cmake --build "$tmp/examples" > "$tmp/build.log" 2>&1 || fail "build examples"
if grep -rq -e "$build" -e "$source/common" "$tmp/examples/CMakeFiles/subscribe_events.dir/flags.make"; then
  fail "the example's flags point into the build or source tree"
fi

echo "== a one-endpoint fleet and the installed daemon"
bin=$tmp/prefix/bin
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
head -c 18 /dev/urandom | base64 > "$tmp/admin.pw"
chmod 600 "$tmp/admin.pw"
"$bin/certfleet-agent" --state-dir "$tmp/fleet" fleet --count 1 --bind 127.0.0.1 \
  --base-port "$port" --admin-password-file "$tmp/admin.pw" > "$tmp/fleet.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [[ -f $tmp/fleet/manifest.json ]] && break; sleep 0.1; done
[[ -f $tmp/fleet/manifest.json ]] || fail "the fleet wrote no manifest"

cf=("$bin/certfleet" --state-dir "$tmp/manager")
"${cf[@]}" init > "$tmp/init.log" 2>&1 || fail "certfleet init"
"$bin/certfleetd" --state-dir "$tmp/manager" > "$tmp/daemon.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do "${cf[@]}" status > /dev/null 2>&1 && break; sleep 0.1; done

"$tmp/examples/subscribe_events" "$tmp/manager/control.sock" --count 1 > "$tmp/events.out" \
  2> "$tmp/subscriber.log" &
subscriber=$!
pids+=("$subscriber")
"${cf[@]}" server add --from "$tmp/fleet/manifest.json" --password-file "$tmp/admin.pw" \
  > "$tmp/add.log" 2>&1 || fail "server add"

for _ in $(seq 300); do kill -0 "$subscriber" 2>/dev/null || break; sleep 0.1; done
kill -0 "$subscriber" 2>/dev/null && fail "subscribe_events printed no trust change within 30 s"
wait "$subscriber" || fail "subscribe_events exited with $?"
cat "$tmp/events.out"
grep -Eq "^[0-9]+ (registered|validated) s-[0-9a-f]{8} 127\.0\.0\.1:$port " "$tmp/events.out" \
  || fail "unexpected output: $(cat "$tmp/events.out")"
echo "PASS"
