#!/usr/bin/env bash
# Fault scenarios under load, each judged against the store.
#
#   infra/faults.sh [--short] [SCENARIO ...]
#
# Scenarios: consumer-kill (kill -9 of the consumer mid-batch, restarted), ingress-kill
# (kill -9 of the ingress with requests in flight, restarted), broker-restart (kill -9 of
# tansu, restarted on its durable storage), redis-restart (Redis stopped, then started),
# disk-full (the store on a small tmpfs: the consumer stops, the volume grows, it resumes)
# and network (delay and loss on loopback with tc netem). disk-full and network need root
# and kernel support; without it they print SKIPPED and why. Default: all of them;
# --short runs the first four, shorter (the version the test suite runs).
#
# Each scenario drives `loadtest open-loop` at a constant rate (no retries), injects its
# fault a few seconds in, waits for the consumers to catch up, stops the pipeline and runs
# `loadtest verify` on what the ingress acknowledged. One row per scenario: requests sent,
# acknowledged, lost (acknowledged but not in the store), doubled (applied twice),
# oversold nights, how long until the ingress answered 2xx without errors again, and how
# long until the consumers had applied everything. Exits non-zero if any row has a lost,
# doubled or oversold event.
#
# Runs on a private stack (its own state directory and free ports), so it never disturbs
# the local stack or a demo.
set -euo pipefail

OWN_STATE="$(mktemp -d /tmp/booking-faults.XXXXXX)"
export BOOKING_STATE_DIR="$OWN_STATE"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
KAFKA_PORT="$(free_port)" REDIS_PORT="$(free_port)" INGRESS_PORT="$(free_port)"
INGRESS_ADMIN_PORT="$(free_port)" CONSUMER_ADMIN_PORT="$(free_port)"
export KAFKA_PORT REDIS_PORT INGRESS_PORT INGRESS_ADMIN_PORT CONSUMER_ADMIN_PORT
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
log() { printf '[faults] %s\n' "$*" >&2; }

ALL=(consumer-kill ingress-kill broker-restart redis-restart disk-full network)
RATE=150 DURATION=30 FAULT_AT=8 OUTAGE=4
scenarios=()
for arg in "$@"; do
  case "$arg" in
    --short) RATE=100 DURATION=20 FAULT_AT=4 OUTAGE=3; scenarios=("${ALL[@]:0:4}") ;;
    consumer-kill|ingress-kill|broker-restart|redis-restart|disk-full|network) scenarios+=("$arg") ;;
    *) die "unknown argument $arg (scenarios: ${ALL[*]}, or --short)" ;;
  esac
done
((${#scenarios[@]})) || scenarios=("${ALL[@]}")

WORK="$STATE_DIR/faults"
DISK="$WORK/disk"
cleanup() {
  stop_pipeline || true
  tc qdisc del dev lo root 2>/dev/null || true
  mountpoint -q "$DISK" 2>/dev/null && umount "$DISK"
  "$REPO/infra/stack.sh" down >/dev/null 2>&1 || true
  if [[ -n "${BOOKING_KEEP_FAULTS:-}" ]]; then log "kept $WORK"; else rm -rf "$OWN_STATE"; fi
}
trap cleanup EXIT

"$REPO/infra/stack.sh" up
log "building the ingress, consumer and load generator (release)"
cargo build --quiet --release --manifest-path "$REPO/Cargo.toml" -p ingress -p consumers -p loadtest --bins
mkdir -p "$WORK"

now() { date +%s.%N; }
kill9() { kill -KILL "$(cat "$PIDS/$1.pid")"; rm -f "$PIDS/$1.pid"; log "kill -9 $1"; }


# --- Faults: each injects its fault and brings the system back the way an operator or
# --- orchestrator would. They run FAULT_AT seconds into the load.

fault_consumer-kill() { kill9 consumer; sleep 1; start_pipeline; }
fault_ingress-kill() { kill9 ingress; sleep 1; start_pipeline; }
fault_broker-restart() {
  kill9 tansu; sleep "$OUTAGE"
  "$REPO/infra/stack.sh" up >/dev/null 2>&1
  log "tansu restarted"
}
fault_redis-restart() {
  stop redis; sleep "$OUTAGE"
  "$REPO/infra/stack.sh" up >/dev/null 2>&1
  log "redis restarted"
}
fault_disk-full() {
  log "waiting for the consumer to stop on the full volume"
  local deadline=$((SECONDS + 60))
  while running consumer && ((SECONDS < deadline)); do sleep 0.5; done
  running consumer && { log "the consumer never stopped: the volume did not fill"; return 1; }
  grep -i "consumer stopped" "$LOGS/consumer.log" | tail -1 | sed 's/^/[faults]   consumer: /' >&2 || true
  mount -o remount,size=512m "$DISK"
  log "volume grown to 512 MB; restarting the consumer"
  start_pipeline
}
fault_network() {
  tc qdisc add dev lo root netem delay 20ms 5ms loss 1%
  log "loopback: 20 ms ± 5 ms delay, 1% loss for $((OUTAGE * 2)) s"
  sleep $((OUTAGE * 2))
  tc qdisc del dev lo root
}

# Why a scenario cannot run here, or nothing.
unsupported() {
  case "$1" in
    disk-full)
      mkdir -p "$DISK"
      mount -t tmpfs -o size=4m tmpfs "$DISK" 2>/dev/null || { echo "cannot mount a tmpfs (needs root)"; return; }
      umount "$DISK" ;;
    network)
      tc qdisc add dev lo root netem delay 1ms 2>/dev/null || { echo "tc netem unavailable (kernel module sch_netem or root missing)"; return; }
      tc qdisc del dev lo root ;;
  esac
}

ROWS=()
run_scenario() {
  local name="$1" why
  why="$(unsupported "$name")"
  if [[ -n "$why" ]]; then
    log "SKIPPED $name: $why"
    ROWS+=("$(printf '%-15s SKIPPED: %s' "$name" "$why")")
    return
  fi
  log "== $name: $RATE requests/s for ${DURATION}s, fault at ${FAULT_AT}s"
  local store="$STATE_DIR/store" group="booking-consumers"
  if [[ "$name" == disk-full ]]; then
    # Its own small volume and group: the consumer reads the topic from the start into it.
    mount -t tmpfs -o size=4m tmpfs "$DISK"
    store="$DISK/store" group="faults-disk-full"
  fi
  STORE_DIR="$store" CONSUMER_GROUP_ID="$group"
  export CONSUMER_GROUP_ID
  start_pipeline
  "$BIN_DIR/loadtest" open-loop --ingress-url "$INGRESS_URL" --rate "$RATE" \
    --duration-secs "$DURATION" --out "$WORK/$name-result.json" --record "$WORK/$name-run.json" \
    >"$WORK/$name-load.txt" 2>&1 &
  local generator=$!
  sleep "$FAULT_AT"
  local fault_start; fault_start="$(now)"
  "fault_$name"
  wait "$generator" || true   # transport errors during a kill are expected and reported
  local caught_up=-1
  if wait_caught_up; then caught_up="$(awk "BEGIN { print $(now) - $fault_start }")"; fi
  stop_pipeline
  "$BIN_DIR/loadtest" verify --store-dir "$store" --record "$WORK/$name-run.json" \
    --json "$WORK/$name-verdict.json" >"$WORK/$name-verify.txt" || true
  ROWS+=("$(python3 - "$name" "$WORK" "$FAULT_AT" "$caught_up" <<'PY'
import json, sys
name, work, fault_at, caught_up = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
try:
    result = json.load(open(f"{work}/{name}-result.json"))
    checks = {c["name"]: c for c in json.load(open(f"{work}/{name}-verdict.json"))["checks"]}
except (OSError, ValueError) as error:
    print(f"{name:<15} FAIL: no result or store verdict ({error}); see {work}/{name}-*.txt")
    sys.exit(0)
failures = lambda prefix: sum(len(c["failures"]) for n, c in checks.items() if n.startswith(prefix))
lost = failures("acknowledged events in the store")
doubled = failures("acknowledged events applied once")
oversold = failures("no night sold") + failures("sold units equal")
acked = sum(n for s, n in result["statuses"].items() if 200 <= int(s) < 300)
# Seconds from the fault until a second whose requests all got a 2xx or 4xx answer.
clean_again = "-"
for second, counts in enumerate(result["timeline"]):
    if second >= fault_at and counts["ok"] > 0 and not (counts["server_error"] or counts["transport_error"] or counts["shed"]):
        clean_again = f"{second - fault_at} s"
        break
verdict = "PASS" if lost == doubled == oversold == 0 and caught_up >= 0 else "FAIL"
caught = f"{caught_up:.1f} s" if caught_up >= 0 else "never"
print(f"{name:<15} {result['sent']:>8} {acked:>8} {lost:>6} {doubled:>8} {oversold:>9} {clean_again:>14} {caught:>15}  {verdict}")
PY
)")
  if [[ "$name" == disk-full ]]; then umount "$DISK"; fi
  unset CONSUMER_GROUP_ID
}

for scenario in "${scenarios[@]}"; do run_scenario "$scenario"; done

echo
printf '%-15s %8s %8s %6s %8s %9s %14s %15s  %s\n' scenario requests acked lost doubled oversold "2xx again" "caught up" verdict
printf '%s\n' "${ROWS[@]}"
[[ -n "${BOOKING_KEEP_FAULTS:-}" ]] || echo "(logs and per-scenario results: rerun with BOOKING_KEEP_FAULTS=1)"
if printf '%s\n' "${ROWS[@]}" | grep -q ' FAIL'; then exit 1; fi
