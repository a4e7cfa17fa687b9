#!/usr/bin/env bash
# One command from a fresh machine to a demo: bring up the local stack, build and start the
# ingress and a consumer, push a demo load through them, then stop them and verify the
# store against every acknowledged event. Prints what happened; exits non-zero if any
# acknowledged booking is missing or doubled, or any night is oversold.
#
#   infra/demo.sh [--store embedded|cql] [loadtest demo options]
#
# --store cql keeps the consumers' state in Apache Cassandra (the CQL store standing in for
# ScyllaDB, started by the stack) instead of the embedded store. Other arguments go to
# `loadtest demo` (e.g. --bookings 10000 --concurrency 64). INGRESS_PORT,
# INGRESS_ADMIN_PORT and CONSUMER_ADMIN_PORT move the pipeline off its default ports 8080,
# 9080 and 9081.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

store=embedded
if [[ "${1:-}" == --store ]]; then store="${2:?--store takes embedded or cql}"; shift 2; fi
case "$store" in
  embedded) "$REPO/infra/stack.sh" up ;;
  cql)
    "$REPO/infra/stack.sh" up --cassandra
    export CONSUMER_STORE=scylla CONSUMER_SCYLLA_URI="127.0.0.1:$CASSANDRA_PORT"
    ;;
  *) die "--store takes embedded or cql" ;;
esac
build_binaries

start_pipeline

RECORD="$STATE_DIR/demo-run.json"
status=0
"$BIN_DIR/loadtest" demo --ingress-url "$INGRESS_URL" --record "$RECORD" --redis-url "redis://127.0.0.1:$REDIS_PORT/" "$@" || status=$?

# The dashboard and the alert rules must only name metrics the running binaries export.
echo
python3 "$REPO/infra/check-metrics.py" --quiet \
  --scrape "http://$INGRESS_ADMIN/metrics" --scrape "http://$CONSUMER_ADMIN/metrics" || status=$?

# The embedded store's files are locked by their owner: stop the pipeline (gracefully, as
# an orchestrator would) before reading the store.
stop ingress
stop consumer
echo
"$BIN_DIR/loadtest" verify --store-dir "$STORE_DIR" --record "$RECORD" || status=$?
echo
log "the stack keeps running; infra/stack.sh down stops it, reset wipes $STATE_DIR"
exit "$status"
