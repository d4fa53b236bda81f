#!/usr/bin/env bash
# The main job on embedded defaults: installs what is missing, builds, then runs the manager
# daemon against a simulated fleet of backup servers on loopback, and shows it trusting and
# collecting from all of them.
#
#   1. a fleet of $CERTFLEET_DEMO_SERVERS (default 100) simulated backup servers
#      (certfleet-agent fleet) on 127.0.0.1, each with its own certificate; its manifest publishes
#      every thumbprint, as an out-of-band channel would;
#   2. certfleet init (manager identity, summary printed) and certfleetd on built-in defaults;
#   3. every server added with its Backup Administrator account and expected thumbprint;
#   4. certfleet status until every server is trusted and collected.
# Everything lives in ./certfleet-demo (or $CERTFLEET_DEMO_DIR), recreated on each run. The daemon
# and the fleet keep running until you press Ctrl-C (or pass --exit to stop at once).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build_dir=$(scripts/build.sh | tail -n 1)
bin="$build_dir/apps"
demo=${CERTFLEET_DEMO_DIR:-$PWD/certfleet-demo}
count=${CERTFLEET_DEMO_SERVERS:-100}

rm -rf "$demo"
mkdir -p "$demo"
chmod 700 "$demo"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== 1. A simulated fleet of $count backup servers (log: $demo/fleet.log)"
head -c 18 /dev/urandom | base64 > "$demo/admin.pw"
chmod 600 "$demo/admin.pw"
"$bin/agent/certfleet-agent" --state-dir "$demo/fleet" fleet --count "$count" \
  --admin-password-file "$demo/admin.pw" > "$demo/fleet.log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do [[ -f "$demo/fleet/manifest.json" ]] && break; sleep 0.1; done
[[ -f "$demo/fleet/manifest.json" ]] || { cat "$demo/fleet.log"; exit 1; }
echo "manifest with every endpoint's SHA-256 thumbprint: $demo/fleet/manifest.json"

echo
echo "== 2. The manager: identity and daemon (log: $demo/daemon.log)"
cf=("$bin/certfleet" --state-dir "$demo/manager")
"${cf[@]}" init
"$bin/daemon/certfleetd" --state-dir "$demo/manager" > "$demo/daemon.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do "${cf[@]}" status > /dev/null 2>&1 && break; sleep 0.1; done

echo
echo "== 3. Adding all $count servers with their expected thumbprints"
"${cf[@]}" server add --from "$demo/fleet/manifest.json" --password-file "$demo/admin.pw" \
  > "$demo/added.txt"
tail -n 1 "$demo/added.txt"

echo
echo "== 4. Waiting until every server is trusted and collected"
for _ in $(seq 600); do
  status=$("${cf[@]}" --json status)
  trusted=$(grep -o '"trusted": [0-9]*' <<< "$status" | grep -o '[0-9]*$' || echo 0)
  collections=$(grep -o '"collections": [0-9]*' <<< "$status" | grep -o '[0-9]*$')
  printf '\r  trusted %s/%s, collections %s ' "$trusted" "$count" "$collections"
  [[ "$trusted" == "$count" && "$collections" -ge "$count" ]] && break
  sleep 0.5
done
echo
"${cf[@]}" status
echo
"${cf[@]}" server list > "$demo/servers.txt"
head -n 6 "$demo/servers.txt"
echo "  ... ($demo/servers.txt has them all)"
cat <<MSG

All $count servers are trusted and collected. Try, in another terminal:
  ${cf[*]} events --follow                       # trust-change events as they happen
  $bin/agent/certfleet-agent --state-dir $demo/fleet fault --endpoint 7 regenerate
  $bin/agent/certfleet-agent --state-dir $demo/fleet fault --endpoint 7 offline
  $bin/agent/certfleet-agent --state-dir $demo/fleet fault --endpoint 7 online
  ${cf[*]} server list                           # endpoint 7 is now certificate_changed
  ${cf[*]} server show ID                        # the presented thumbprint to verify
  ${cf[*]} server trust ID --thumbprint NEW      # validate it by hand: collected again
MSG
if [[ "${1:-}" == "--exit" ]]; then exit 0; fi
echo "Press Ctrl-C to stop the daemon and the fleet."
wait
