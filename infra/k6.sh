#!/usr/bin/env bash
# Runs one k6 suite of loadtest/k6 against the local pipeline and prints k6's summary.
#
#   infra/k6.sh SUITE [k6 run options...]
#   SUITE: smoke | load | spike | soak | contention | idempotency
#
# Installs k6 if missing, brings the local stack up, builds and starts the ingress and a
# consumer unless they already run, runs the suite, then stops what it started (the stack
# keeps running, as after infra/demo.sh). Each suite reads its knobs from the environment
# (RATE, DURATION, ...; see the top of each script), and K6_TIME_LIMIT (default 30m) caps
# the whole k6 run. Exits with k6's status: 99 when a threshold (an SLO) was crossed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
log() { printf '[k6] %s\n' "$*" >&2; }

SUITES_DIR="$REPO/loadtest/k6"
suite="${1:-}"
if [[ -z "$suite" || ! -f "$SUITES_DIR/$suite.js" ]]; then
  die "usage: $0 SUITE [k6 run options...], SUITE one of: $(find "$SUITES_DIR" -maxdepth 1 -name '*.js' -printf '%f ' | sed 's/\.js//g')"
fi
shift

install_load_tools
"$REPO/infra/stack.sh" up
build_binaries
trap stop_pipeline EXIT
start_pipeline

log "running the $suite suite against $INGRESS_URL"
# k6 stops on SIGINT and still prints its summary; the KILL after 30 s is the last resort.
INGRESS_URL="$INGRESS_URL" timeout --signal=INT --kill-after=30s "${K6_TIME_LIMIT:-30m}" \
  "$LOAD_TOOLS_VENV/bin/k6" run --quiet "$@" "$SUITES_DIR/$suite.js"
