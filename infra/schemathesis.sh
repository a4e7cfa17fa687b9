#!/usr/bin/env bash
# Property-based API tests of the live ingress with schemathesis: it reads the served
# /openapi.json, generates valid and invalid requests for every operation, and checks that
# no answer is a server error and every status, content type and body is the documented one.
#
#   infra/schemathesis.sh [schemathesis run options...]
#
# Installs schemathesis if missing, brings the local stack up, starts the ingress and a
# consumer unless they already run, runs once per demo partner key (ota-1 may do
# everything, ota-2 only write bookings, so both the accepted and the forbidden paths are
# exercised), then stops what it started. Every phase runs: examples, coverage, fuzzing,
# and the stateful phase, which follows the spec's links from a create to reading,
# modifying and cancelling the booking it made. Settings: infra/schemathesis.toml; the
# hook in infra/schemathesis_hooks.py keeps generated stays within the rules the schema
# cannot state, so creates succeed often enough to give the stateful phase bookings, and
# lets a read of a booking just written wait briefly for the consumer to apply it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
log() { printf '[schemathesis] %s\n' "$*" >&2; }

install_load_tools
"$REPO/infra/stack.sh" up
build_binaries
trap stop_pipeline EXIT
start_pipeline

# schemathesis keeps its example cache (failures to replay next time) in the working
# directory: keep it with the stack's state rather than in the repository.
mkdir -p "$STATE_DIR/schemathesis"
cd "$STATE_DIR/schemathesis"
status=0
for key in demo-ota-1-secret demo-ota-2-secret; do
  log "partner key ${key%-secret}: $INGRESS_URL/openapi.json"
  # No bytecode cache of the hooks file next to it in the repository.
  PARTNER_KEY="$key" SCHEMATHESIS_HOOKS="$REPO/infra/schemathesis_hooks.py" PYTHONDONTWRITEBYTECODE=1 \
    timeout --kill-after=10s "${SCHEMATHESIS_TIME_LIMIT:-5m}" \
    "$LOAD_TOOLS_VENV/bin/schemathesis" --config-file "$REPO/infra/schemathesis.toml" \
    run "$INGRESS_URL/openapi.json" --url "$INGRESS_URL" --seed "${SCHEMATHESIS_SEED:-1}" \
    --report-dir "$STATE_DIR/schemathesis/report" "$@" || status=$?
done
exit "$status"
