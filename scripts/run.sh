#!/usr/bin/env bash
# The main job on embedded defaults: installs what is missing, builds, initialises a state
# directory (default ./certfleet-state, or $CERTFLEET_STATE_DIR) and prints the manager
# identity's summary for out-of-band verification.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build_dir=$(scripts/build.sh | tail -n 1)
state_dir=${CERTFLEET_STATE_DIR:-$PWD/certfleet-state}
"$build_dir/apps/certfleet" --state-dir "$state_dir" init
