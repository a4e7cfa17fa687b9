#!/usr/bin/env bash
# The local stack: tansu (a Kafka-protocol broker on a durable SQLite engine) and Redis,
# both on loopback, with their data under one state directory outside the repository.
#
#   infra/stack.sh up      install what is missing, start, wait until ready, create topics
#   infra/stack.sh status  show what runs
#   infra/stack.sh down    stop exactly the processes this script started (by recorded PID)
#   infra/stack.sh reset   down, then wipe the state directory
#
# Re-running `up` is safe: running services are left alone.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

install_tansu() {
  if command -v tansu >/dev/null && tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    return
  fi
  log "installing tansu $TANSU_VERSION with the libSQL (SQLite) storage engine (about 10 minutes on 2 cores)"
  cargo install tansu --locked --version "$TANSU_VERSION" --features libsql
}

install_redis() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return
  log "installing redis-server from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}

start_tansu() {
  if running tansu; then log "tansu already running (pid $(cat "$PIDS/tansu.pid"))"; return; fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by a process this script did not start"
  mkdir -p "$STATE_DIR/tansu"
  # tansu resolves the sqlite path relative to its working directory.
  (cd "$STATE_DIR/tansu" && exec tansu broker \
      --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --storage-engine "sqlite://tansu.db" </dev/null >>"$LOGS/tansu.log" 2>&1) &
  echo $! >"$PIDS/tansu.pid"
  log "started tansu (pid $!) on 127.0.0.1:$KAFKA_PORT"
}

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
  log "building the consumer and ensuring topics"
  cargo build --quiet --release -p consumers --bin consumer --manifest-path "$REPO/Cargo.toml"
  local bin="$BIN_DIR/consumer"
  # A fresh broker may accept connections before it serves metadata: retry briefly.
  for attempt in 1 2 3 4 5; do
    if CONSUMER_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT" RUST_LOG=error "$bin" ensure-topics; then
      log "topics ready: bookings (12 partitions), booking-decisions, bookings-dlq"
      return
    fi
    log "topic creation attempt $attempt failed; retrying"
    sleep 2
  done
  die "could not create topics"
}

# tansu 0.6.0 reads record headers without an index (its header_fetch.sql filters
# `header` on topition and offset_id), so every fetch scans all headers ever written and
# consumer fetches slow the whole broker as the log grows. Indexing those columns of its
# SQLite database keeps the local broker usable for long runs; it is tuning of this
# local broker only, nothing the pipeline relies on.
index_tansu_headers() {
  python3 - "$STATE_DIR/tansu/tansu.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
db.execute("CREATE INDEX IF NOT EXISTS header_topition_offset ON header (topition, offset_id)")
db.commit()
PY
}

case "${1:-up}" in
  up)
    mkdir -p "$PIDS" "$LOGS"
    install_tansu
    install_redis
    start_tansu
    start_redis
    wait_for tansu 30 port_open "$KAFKA_PORT"
    wait_for redis 30 redis_ready
    ensure_topics
    index_tansu_headers
    log "stack is up; state in $STATE_DIR"
    ;;
  status)
    for name in tansu redis ingress consumer; do
      if running "$name"; then echo "$name: running (pid $(cat "$PIDS/$name.pid"))"; else echo "$name: stopped"; fi
    done
    ;;
  down)
    # The pipeline's own processes first, so they drain against a live broker.
    for name in ingress consumer redis tansu; do stop "$name"; done
    ;;
  reset)
    "$0" down
    rm -rf "$STATE_DIR"
    log "wiped $STATE_DIR"
    ;;
  *)
    die "usage: $0 up|status|down|reset"
    ;;
esac
