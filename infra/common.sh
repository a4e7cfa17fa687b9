# Shared by the local stack scripts: paths, PID bookkeeping and waiting.
# shellcheck shell=bash

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${BOOKING_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/booking-pipeline}"
PIDS="$STATE_DIR/pids"
LOGS="$STATE_DIR/logs"
TANSU_VERSION="0.6.0"
# The stack, the demo and the test suite share one release build.
BIN_DIR="$REPO/target/release"
KAFKA_PORT="${KAFKA_PORT:-9092}"
REDIS_PORT="${REDIS_PORT:-6379}"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# A recorded PID counts as ours only while that process still runs the expected program,
# so a recycled PID is never signalled.
running() {
  local name="$1" pid
  [[ -f "$PIDS/$name.pid" ]] || return 1
  pid="$(cat "$PIDS/$name.pid")"
  kill -0 "$pid" 2>/dev/null || return 1
  grep -q -- "$(expected_comm "$name")" "/proc/$pid/cmdline" 2>/dev/null
}

expected_comm() {
  case "$1" in
    tansu) echo tansu ;;
    redis) echo redis-server ;;
    *) echo "$1" ;;
  esac
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local what="$1" seconds="$2"; shift 2
  for _ in $(seq 1 $((seconds * 10))); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  die "$what did not become ready within ${seconds}s (logs: $LOGS)"
}

stop() {
  local name="$1" pid
  if ! running "$name"; then rm -f "$PIDS/$name.pid"; return; fi
  pid="$(cat "$PIDS/$name.pid")"
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$PIDS/$name.pid"
  log "stopped $name (pid $pid)"
}

