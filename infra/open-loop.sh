#!/usr/bin/env bash
# A constant-arrival-rate run against the local pipeline, then the store check: brings up
# the stack, starts the ingress and a consumer unless they run, runs `loadtest open-loop`
# with the given arguments (e.g. --rate 800 --duration-secs 30), waits until the consumers
# have applied everything, stops what it started and runs `loadtest verify` on every
# acknowledged request. Exits non-zero if the store check fails.
#
#   infra/open-loop.sh --rate 500 --duration-secs 30
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$REPO/infra/stack.sh" up
build_binaries
trap stop_pipeline EXIT
start_pipeline

RESULT="$STATE_DIR/open-loop-result.json"
RECORD="$STATE_DIR/open-loop-run.json"
"$BIN_DIR/loadtest" open-loop --ingress-url "$INGRESS_URL" --out "$RESULT" --record "$RECORD" "$@"

log "waiting for the consumers to apply everything"
wait_caught_up || true
stop_pipeline
# The consumer holds its store files while it runs, so the check reads them after it stopped.
echo
"$BIN_DIR/loadtest" verify --store-dir "$STORE_DIR" --record "$RECORD"
