#!/usr/bin/env bash
# One command from a fresh machine to a demo: bring up the local stack, build and start the
# ingress and a consumer, push a demo load through them, then stop them and verify the
# store against every acknowledged event. Prints what happened; exits non-zero if any
# acknowledged booking is missing or doubled, or any night is oversold.
#
# Extra arguments go to `loadtest demo` (e.g. --bookings 10000 --concurrency 64).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$REPO/infra/stack.sh" up
log "building the ingress, consumer and load generator (release)"
cargo build --quiet --release --manifest-path "$REPO/Cargo.toml" \
  -p ingress -p consumers -p loadtest --bins

STORE_DIR="$STATE_DIR/store"
INGRESS_ADMIN="127.0.0.1:9080"
CONSUMER_ADMIN="127.0.0.1:9081"

start() {
  local name="$1"; shift
  if running "$name"; then log "$name already running (pid $(cat "$PIDS/$name.pid"))"; return; fi
  "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
  log "started $name (pid $!), log $LOGS/$name.log"
}

ready() { curl -fsS "http://$1/readyz" >/dev/null 2>&1; }

start consumer env CONSUMER_STORE_DIR="$STORE_DIR" CONSUMER_ADMIN_ADDR="$CONSUMER_ADMIN" \
  CONSUMER_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT" CONSUMER_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/" \
  "$BIN_DIR/consumer"
start ingress env INGRESS_PARTNERS_FILE="$REPO/infra/dev-partners.json" \
  INGRESS_ADMIN_LISTEN="$INGRESS_ADMIN" INGRESS_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT" \
  "$BIN_DIR/ingress"
wait_for consumer 30 ready "$CONSUMER_ADMIN"
wait_for ingress 30 ready "$INGRESS_ADMIN"

RECORD="$STATE_DIR/demo-run.json"
status=0
"$BIN_DIR/loadtest" demo --record "$RECORD" --redis-url "redis://127.0.0.1:$REDIS_PORT/" "$@" || status=$?

# The store files are locked by their owner: stop the pipeline (gracefully, as an
# orchestrator would) before reading them.
stop ingress
stop consumer
echo
"$BIN_DIR/loadtest" verify --store-dir "$STORE_DIR" --record "$RECORD" || status=$?
echo
log "tansu and redis keep running; infra/stack.sh down stops them, reset wipes $STATE_DIR"
exit "$status"
