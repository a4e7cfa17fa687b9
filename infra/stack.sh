#!/usr/bin/env bash
# The local stack: Apache Kafka (infra/kafka.sh), Redis and, on request, Apache Cassandra
# as the CQL store (infra/cassandra.sh), all on loopback, with their data under one state
# directory outside the repository.
#
#   infra/stack.sh up [--kafka-nodes 1|3] [--cassandra] [--redis-cluster]
#                          install what is missing, start, wait until ready, create topics
#                          (three Kafka nodes: replication factor 3, min.insync.replicas 2;
#                          --redis-cluster: a three-master Redis Cluster beside the single
#                          Redis, infra/redis-cluster.sh)
#   infra/stack.sh status  show what runs
#   infra/stack.sh down    stop exactly the processes the scripts started (by recorded PID)
#   infra/stack.sh reset   down, then wipe the state directory
#
# Re-running `up` is safe: running services are left alone.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

start_redis() {
  if running redis; then log "redis already running (pid $(cat "$PIDS/redis.pid"))"; return; fi
  port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by a process this script did not start"
  mkdir -p "$STATE_DIR/redis"
  # Redis holds projections only (rebuildable from the store), so an append-only file
  # with per-second fsync is plenty.
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STATE_DIR/redis" \
    --appendonly yes --appendfsync everysec --save "" --daemonize no \
    --logfile "$LOGS/redis.log" </dev/null >>"$LOGS/redis.log" 2>&1 &
  echo $! >"$PIDS/redis.pid"
  log "started redis (pid $!) on 127.0.0.1:$REDIS_PORT"
}

redis_ready() { [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

ensure_topics() {
  build_binaries
  log "ensuring topics"
  local bin="$BIN_DIR/consumer" replication=1
  [[ "$(kafka_brokers)" == *,* ]] && replication=3
  # A fresh cluster may accept connections before every broker has registered with the
  # controller, and topics of replication factor 3 need all three: retry for a while.
  for attempt in $(seq 1 15); do
    if CONSUMER_KAFKA_BROKERS="$(kafka_brokers)" TOPICS_REPLICATION="$replication" RUST_LOG=error \
        "$bin" ensure-topics; then
      log "topics ready: bookings (12 partitions), booking-decisions, booking-replies, bookings-dlq, booking-decisions-webhook-dlq; replication $replication"
      return
    fi
    log "topic creation attempt $attempt failed; retrying"
    sleep 2
  done
  die "could not create topics"
}

case "${1:-up}" in
  up)
    shift || true
    kafka_nodes=1 cassandra=0 redis_cluster=0
    while (($#)); do
      case "$1" in
        --kafka-nodes) kafka_nodes="$2"; shift 2 ;;
        --cassandra) cassandra=1; shift ;;
        --redis-cluster) redis_cluster=1; shift ;;
        *) die "unknown option $1 (up [--kafka-nodes 1|3] [--cassandra] [--redis-cluster])" ;;
      esac
    done
    mkdir -p "$PIDS" "$LOGS"
    install_redis
    start_redis
    "$REPO/infra/kafka.sh" start --nodes "$kafka_nodes"
    ((cassandra)) && "$REPO/infra/cassandra.sh" start
    ((redis_cluster)) && "$REPO/infra/redis-cluster.sh" start
    wait_for redis 30 redis_ready
    ensure_topics
    log "stack is up; state in $STATE_DIR"
    ;;
  status)
    for name in redis ingress consumer feed deliver; do
      if running "$name"; then echo "$name: running (pid $(cat "$PIDS/$name.pid"))"; else echo "$name: stopped"; fi
    done
    "$REPO/infra/kafka.sh" status
    "$REPO/infra/cassandra.sh" status
    "$REPO/infra/redis-cluster.sh" status
    ;;
  down)
    # The pipeline's own processes first, so they drain against a live broker.
    for name in ingress feed deliver consumer redis; do stop "$name"; done
    "$REPO/infra/redis-cluster.sh" stop
    "$REPO/infra/kafka.sh" stop
    "$REPO/infra/cassandra.sh" stop
    ;;
  reset)
    "$0" down
    rm -rf "$STATE_DIR"
    log "wiped $STATE_DIR"
    ;;
  *)
    die "usage: $0 up [--kafka-nodes 1|3] [--cassandra] [--redis-cluster]|status|down|reset"
    ;;
esac
