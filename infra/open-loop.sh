#!/usr/bin/env bash
# A constant-arrival-rate run against the local pipeline, then the store check: brings up
# the stack, starts the ingress and a consumer unless they run, runs `loadtest open-loop`
# with the given arguments (e.g. --rate 800 --duration-secs 30), waits until the consumers
# have applied everything, stops what it started and runs `loadtest verify` on every
# acknowledged request. Exits non-zero if the store check fails. Its charts go to
# $CHARTS_DIR (BOOKING_CHARTS_DIR; by default charts/ in the state directory): the latency
# distribution (open-loop-latency.svg) and the run second by second with the consumers'
# lag sampled every second (open-loop-timeline.svg).
#
#   infra/open-loop.sh --rate 500 --duration-secs 30
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$REPO/infra/stack.sh" up
build_binaries
SAMPLER=""
finish() {
  [[ -z "$SAMPLER" ]] || kill "$SAMPLER" 2>/dev/null || true
  stop_pipeline
}
trap finish EXIT
start_pipeline

RESULT="$STATE_DIR/open-loop-result.json"
RECORD="$STATE_DIR/open-loop-run.json"
LAG="$STATE_DIR/open-loop-lag.txt"
: >"$LAG"
sample_lag "$LAG" &
SAMPLER=$!
"$BIN_DIR/loadtest" open-loop --ingress-url "$INGRESS_URL" --out "$RESULT" --record "$RECORD" "$@"

log "waiting for the consumers to apply everything"
wait_caught_up || true
kill "$SAMPLER" 2>/dev/null || true
SAMPLER=""
stop_pipeline
mkdir -p "$CHARTS_DIR"
cp "${RESULT%.json}-latency.svg" "$CHARTS_DIR/open-loop-latency.svg"
"$BIN_DIR/loadtest" chart timeline --result "$RESULT" --lag "$LAG" \
  --title "Open loop against the local pipeline, answers and lag per second" \
  --out "$CHARTS_DIR/open-loop-timeline.svg"
log "charts: $CHARTS_DIR/open-loop-latency.svg, $CHARTS_DIR/open-loop-timeline.svg"
# The consumer holds its store files while it runs, so the check reads them after it stopped.
echo
"$BIN_DIR/loadtest" verify --store-dir "$STORE_DIR" --record "$RECORD"
