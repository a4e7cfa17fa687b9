#!/usr/bin/env bash
# One command from a fresh machine to a demo: bring up the local stack, build and start the
# ingress and a consumer, push a demo load through them (and a channel manager's
# OpenTravel messages), then stop them and verify the
# store against every acknowledged event. Prints what happened; exits non-zero if any
# acknowledged booking is missing or doubled, or any night is oversold.
#
#   infra/demo.sh [--store embedded|cql] [--redis node|cluster] [loadtest demo options]
#
# --store cql keeps the consumers' state in Apache Cassandra (the CQL store standing in for
# ScyllaDB, started by the stack) instead of the embedded store. --redis cluster runs the
# idempotency records and projections on the stack's three-master Redis Cluster
# (infra/redis-cluster.sh) instead of its single Redis. Other arguments go to
# `loadtest demo` (e.g. --bookings 10000 --concurrency 64). INGRESS_PORT,
# INGRESS_ADMIN_PORT and CONSUMER_ADMIN_PORT move the pipeline off its default ports 8080,
# 9080 and 9081.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

store=embedded redis=node
while [[ "${1:-}" == --store || "${1:-}" == --redis ]]; do
  case "$1" in
    --store) store="${2:?--store takes embedded or cql}" ;;
    --redis) redis="${2:?--redis takes node or cluster}" ;;
  esac
  shift 2
done
stack_options=()
case "$store" in
  embedded) ;;
  cql)
    stack_options+=(--cassandra)
    export CONSUMER_STORE=scylla CONSUMER_SCYLLA_URI="127.0.0.1:$CASSANDRA_PORT"
    ;;
  *) die "--store takes embedded or cql" ;;
esac
case "$redis" in
  node) ;;
  cluster)
    stack_options+=(--redis-cluster)
    export PIPELINE_REDIS_URL; PIPELINE_REDIS_URL="$(redis_cluster_urls)"
    ;;
  *) die "--redis takes node or cluster" ;;
esac
"$REPO/infra/stack.sh" up ${stack_options[@]+"${stack_options[@]}"}
build_binaries

start_pipeline

RECORD="$STATE_DIR/demo-run.json"
status=0
"$BIN_DIR/loadtest" demo --ingress-url "$INGRESS_URL" --record "$RECORD" --redis-url "$(pipeline_redis_url)" "$@" || status=$?

# A channel manager's messages in OpenTravel XML: the samples of loadtest/ota/ (hotel
# LIS001 of acme, April and May 2027) to POST /v1/ota, each answered with its …RS. A later
# run sends the same messages again: retransmissions, answered the same and applied once.
echo
log "OpenTravel messages to POST /v1/ota as partner ota-1 (loadtest/ota/)"
for message in OTA_HotelInvCountNotifRQ OTA_HotelAvailNotifRQ OTA_HotelResNotifRQ \
    OTA_HotelResModifyNotifRQ OTA_CancelRQ; do
  printf '  %-27s -> ' "$message"
  curl -sS --max-time 10 "$INGRESS_URL/v1/ota" -H 'authorization: Bearer demo-ota-1-secret' \
    -H 'content-type: application/xml' --data-binary @"$REPO/loadtest/ota/$message.xml" \
    | python3 "$REPO/infra/ota_rs.py" --summary || status=1
done

# The dashboard and the alert rules must only name metrics the running binaries export.
echo
python3 "$REPO/infra/check-metrics.py" --quiet \
  --scrape "http://$INGRESS_ADMIN/metrics" --scrape "http://$CONSUMER_ADMIN/metrics" || status=$?

# The embedded store's files are locked by their owner: stop the pipeline (gracefully, as
# an orchestrator would) before reading the store.
stop ingress
stop feed
stop deliver
stop consumer
echo
"$BIN_DIR/loadtest" verify --store-dir "$STORE_DIR" --record "$RECORD" || status=$?
echo
log "the stack keeps running; infra/stack.sh down stops it, reset wipes $STATE_DIR"
exit "$status"
