#!/usr/bin/env bash
# Fault scenarios under load, each judged against the store.
#
#   infra/faults.sh [--short] [SCENARIO ...]
#   infra/faults.sh --cluster [SCENARIO ...]
#   infra/faults.sh --redis-cluster [SCENARIO ...]
#
# On one Kafka node: consumer-kill (kill -9 of the consumer mid-batch, restarted),
# ingress-kill (kill -9 of the ingress with requests in flight, restarted), broker-restart
# (kill -9 of the broker, restarted on its log), redis-restart (Redis stopped, then
# started), disk-full (the store on a small tmpfs: the consumer stops, the volume grows, it
# resumes) and network (delay and loss on loopback with tc netem). disk-full and network
# need root and kernel support; without it they print SKIPPED and why. Default: all of
# them; --short runs the first four, shorter (the version the test suite runs).
#
# --cluster runs on three Kafka nodes (replication factor 3, min.insync.replicas 2):
# leader-kill (kill -9 of the node leading the most bookings partitions, restarted after
# OUTAGE seconds), follower-kill (kill -9 of a node that is neither the metadata quorum's
# leader nor the one leading the most partitions, restarted), quorum-loss (kill -9 of two
# nodes: no write can reach min.insync.replicas, so every answer must be a non-2xx until
# they are back; a 2xx for a request sent in the outage fails the row) and
# rolling-restart (each node stopped gracefully and started again, the next only once no
# partition is under-replicated).
#
# --redis-cluster runs the pipeline on a Redis Cluster of three masters with one replica
# each (infra/redis-cluster.sh): redis-master-kill (kill -9 of a master; its replica is
# promoted, the old master rejoins as a replica), redis-slots-lost (kill -9 of a master and
# its replica: a third of the hash slots has no server for OUTAGE seconds; mutations go on
# with this process's idempotency tier, reads of keys in those slots must answer 503 and
# reads of the others 200, checked by probing every key of a probe tenant while the range
# is gone) and redis-restart-all (kill -9 of all six nodes, started again on their
# append-only files).
#
# Each scenario drives `loadtest open-loop` at a constant rate (no retries), injects its
# fault a few seconds in, waits for the consumers to catch up, stops the pipeline and runs
# `loadtest verify` on what the ingress acknowledged. One row per scenario: requests sent,
# acknowledged, lost (acknowledged but not in the store), doubled (applied twice),
# oversold nights, how long after the fault the last 5xx, broken connection or shed
# request came (after it, only 2xx and expected 4xx), and how long until the consumers had
# applied everything. Then, once the consumer has no stale projection left, `consumer
# reconcile` compares every Redis projection with the store: mismatches are its count.
# Exits non-zero if any row has a lost, doubled or oversold event, or a mismatch. Each
# scenario's timeline (answers per second by status, the consumers' lag sampled every
# second, the fault's span shaded) is drawn to $CHARTS_DIR/faults-<scenario>.svg
# (BOOKING_CHARTS_DIR, by default charts/ in the local stack's state directory).
#
# Runs on a private stack (its own state directory and free ports), so it never disturbs
# the local stack or a demo.
set -euo pipefail

OWN_STATE="$(mktemp -d /tmp/booking-faults.XXXXXX)"
export BOOKING_STATE_DIR="$OWN_STATE"
# The first of N consecutive free loopback ports (three Kafka nodes listen on consecutive
# ports, and so do their controllers), below the kernel's ephemeral range: a port in that
# range free now can be taken by any process's outgoing connection before our server
# binds it, minutes later. An optional second argument reserves that much room above the
# ports (a Redis Cluster node also listens on its port + 10000).
free_ports() {
  python3 - "$1" "${2:-0}" <<'PY'
import random, socket, sys
n, room = int(sys.argv[1]), int(sys.argv[2])
try:
    ephemeral_start = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    ephemeral_start = 32768
top = max(ephemeral_start - room, 12000) - n
for _ in range(500):
    base, held = random.randint(10000, top), []
    try:
        for port in range(base, base + n):
            s = socket.socket(); held.append(s); s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        for s in held: s.close()
    print(base); break
PY
}
KAFKA_PORT="$(free_ports 3)" KAFKA_CONTROLLER_PORT="$(free_ports 3)" REDIS_PORT="$(free_ports 1)"
REDIS_CLUSTER_PORT="$(free_ports 6 10000)"
INGRESS_PORT="$(free_ports 1)" INGRESS_ADMIN_PORT="$(free_ports 1)" CONSUMER_ADMIN_PORT="$(free_ports 1)"
FEED_ADMIN_PORT="$(free_ports 1)" DELIVER_ADMIN_PORT="$(free_ports 1)"
export KAFKA_PORT KAFKA_CONTROLLER_PORT REDIS_PORT REDIS_CLUSTER_PORT INGRESS_PORT INGRESS_ADMIN_PORT CONSUMER_ADMIN_PORT
export FEED_ADMIN_PORT DELIVER_ADMIN_PORT
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
log() { clear_status; printf '[faults] %s\n' "$*" >&2; }

ALL=(consumer-kill ingress-kill broker-restart redis-restart disk-full network)
CLUSTER=(leader-kill follower-kill quorum-loss rolling-restart)
REDIS_CLUSTER=(redis-master-kill redis-slots-lost redis-restart-all)
RATE=150 DURATION=30 FAULT_AT=8 OUTAGE=4 KAFKA_NODES=1
mode=single scenarios=()
for arg in "$@"; do
  case "$arg" in
    --short) RATE=100 DURATION=20 FAULT_AT=4 OUTAGE=3; scenarios=("${ALL[@]:0:4}") ;;
    # Long enough for a leader election, a node's restart and its replicas catching up.
    --cluster) RATE=100 DURATION=60 FAULT_AT=8 OUTAGE=12 KAFKA_NODES=3 mode=cluster ;;
    # Long enough for a failover (node timeout 2 s) and a probe of every key in between.
    --redis-cluster) RATE=100 DURATION=40 FAULT_AT=8 OUTAGE=10 mode=redis-cluster ;;
    -*) die "unknown option $arg (--short, --cluster, --redis-cluster)" ;;
    *) scenarios+=("$arg") ;;
  esac
done
case "$mode" in
  single) allowed=("${ALL[@]}") ;;
  cluster) allowed=("${CLUSTER[@]}") ;;
  redis-cluster) allowed=("${REDIS_CLUSTER[@]}") ;;
esac
((${#scenarios[@]})) || scenarios=("${allowed[@]}")
for s in "${scenarios[@]}"; do
  [[ " ${allowed[*]} " == *" $s "* ]] && continue
  if [[ " ${ALL[*]} " == *" $s "* ]]; then die "$s runs without --cluster or --redis-cluster"; fi
  if [[ " ${CLUSTER[*]} " == *" $s "* ]]; then die "$s needs three Kafka nodes: infra/faults.sh --cluster $s"; fi
  if [[ " ${REDIS_CLUSTER[*]} " == *" $s "* ]]; then die "$s needs a Redis Cluster: infra/faults.sh --redis-cluster $s"; fi
  die "unknown scenario $s (${ALL[*]}; --cluster: ${CLUSTER[*]}; --redis-cluster: ${REDIS_CLUSTER[*]})"
done

WORK="$STATE_DIR/faults"
DISK="$WORK/disk"
# The end of each pipeline process's log, when the run failed: the state directory is
# removed on exit, so a CI log is the only place the cause can still be read.
show_pipeline_logs() {
  local name
  for name in consumer ingress; do
    [[ -s "$LOGS/$name.log" ]] || continue
    log "last lines of $name.log:"
    tail -n 40 "$LOGS/$name.log" | sed "s/^/[faults]   $name: /" >&2
  done
}
SAMPLER=""
stop_sampler() {
  [[ -n "$SAMPLER" ]] || return 0
  kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true
  SAMPLER=""
}
cleanup() {
  local status=$?
  ((status == 0)) || show_pipeline_logs
  stop_sampler
  stop_pipeline || true
  tc qdisc del dev lo root 2>/dev/null || true
  mountpoint -q "$DISK" 2>/dev/null && umount "$DISK"
  "$REPO/infra/stack.sh" down >/dev/null 2>&1 || true
  if [[ -n "${BOOKING_KEEP_FAULTS:-}" ]]; then log "kept $WORK"; else rm -rf "$OWN_STATE"; fi
}
trap cleanup EXIT

if [[ "$mode" == redis-cluster ]]; then
  "$REPO/infra/stack.sh" up --redis-cluster
  # The pipeline's processes (start_pipeline) and `consumer reconcile` use the cluster.
  export PIPELINE_REDIS_URL="$(redis_cluster_urls)"
else
  "$REPO/infra/stack.sh" up --kafka-nodes "$KAFKA_NODES"
fi
build_binaries
mkdir -p "$WORK"

now() { date +%s.%N; }
kill9() {
  if ! running "$1"; then log "$1 had already exited before the fault"; return 1; fi
  kill -KILL "$(cat "$PIDS/$1.pid")"; rm -f "$PIDS/$1.pid"; log "kill -9 $1"
}


# --- Faults: each injects its fault and brings the system back the way an operator or
# --- orchestrator would. They run FAULT_AT seconds into the load.

fault_consumer-kill() { kill9 consumer; sleep 1; start_pipeline; }
fault_ingress-kill() { kill9 ingress; sleep 1; start_pipeline; }
fault_broker-restart() {
  kill9 kafka-1; sleep "$OUTAGE"
  "$REPO/infra/kafka.sh" start >/dev/null 2>&1
  log "kafka-1 restarted"
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

# --- Faults of the three-node cluster. Kafka node N is kafka-N in the PID files.

kafka_tool() { local name="$1"; shift; "$REPO/infra/kafka.sh" tool "$name" --bootstrap-server "$(kafka_brokers)" "$@"; }

# Node ids ordered by how many bookings partitions each leads, most first.
nodes_by_leadership() {
  kafka_tool kafka-topics --describe --topic bookings \
    | grep -o 'Leader: [0-9]*' | awk '{ n[$2]++ } END { for (id in n) print n[id], id }' \
    | sort -rn | awk '{ print $2 }'
}
quorum_leader() { kafka_tool kafka-metadata-quorum describe --status | awk '/^LeaderId:/ { print $2 }'; }
restart_nodes() { "$REPO/infra/kafka.sh" start --nodes 3 >/dev/null; log "kafka nodes restarted: $*"; }
# Waits (at most 120 s) until every replica of every topic is back in sync.
wait_in_sync() {
  local deadline=$((SECONDS + 120))
  while ((SECONDS < deadline)); do
    [[ -z "$(kafka_tool kafka-topics --describe --under-replicated-partitions 2>/dev/null)" ]] && return 0
    sleep 1
  done
  log "replicas still out of sync after 120 s"
}

fault_leader-kill() {
  local leader; leader="$(nodes_by_leadership | head -1)"
  kill9 "kafka-$leader"; sleep "$OUTAGE"; restart_nodes "$leader"
}
fault_follower-kill() {
  local busiest controller id
  busiest="$(nodes_by_leadership | head -1)" controller="$(quorum_leader)"
  for id in 1 2 3; do [[ "$id" != "$busiest" && "$id" != "$controller" ]] && break; done
  kill9 "kafka-$id"; sleep "$OUTAGE"; restart_nodes "$id"
}
fault_quorum-loss() {
  QUORUM_LOST_AT="$(now)"
  kill9 kafka-2; kill9 kafka-3; sleep "$OUTAGE"
  QUORUM_BACK_AT="$(now)"
  restart_nodes 2 3
}
fault_rolling-restart() {
  local id
  for id in 1 2 3; do
    stop "kafka-$id" 60; restart_nodes "$id"; wait_in_sync
  done
}

# --- Faults of the Redis Cluster, whose nodes listen on REDIS_CLUSTER_PORT..+5.

redis_cluster() { "$REPO/infra/redis-cluster.sh" "$@"; }
redis_ports() { seq "$REDIS_CLUSTER_PORT" $((REDIS_CLUSTER_PORT + 5)); }
redis_role() { redis-cli -p "$1" role 2>/dev/null | head -1; }
# A master (the first found), and its replica (the node whose ROLE names that master's port).
redis_a_master() { local port; for port in $(redis_ports); do [[ "$(redis_role "$port")" == master ]] && { echo "$port"; return; }; done; }
redis_replica_of() {
  local port
  for port in $(redis_ports); do
    [[ "$(redis-cli -p "$port" role 2>/dev/null | sed -n 3p)" == "$1" ]] && { echo "$port"; return; }
  done
}
kill_redis_node() { redis_cluster stop-node "$1" --kill >/dev/null 2>&1; log "kill -9 redis node $1 ($2)"; }
# Waits (at most 30 s) until the node on PORT is a master; prints how long it took.
wait_promoted() {
  local port="$1" start="$SECONDS"
  while ((SECONDS - start < 30)); do
    [[ "$(redis_role "$port")" == master ]] && { log "redis node $port promoted to master after $((SECONDS - start)) s"; return; }
    sleep 0.2
  done
  log "redis node $port was not promoted within 30 s"
}
PROBE_TENANT=faults-probe
READ_PROBE=(python3 "$REPO/infra/read_probe.py")

fault_redis-master-kill() {
  local master replica; master="$(redis_a_master)" replica="$(redis_replica_of "$master")"
  kill_redis_node "$master" master
  wait_promoted "$replica"
  sleep "$OUTAGE"
  redis_cluster start-node "$master" >/dev/null && log "redis node $master restarted (rejoins as a replica)"
}
fault_redis-slots-lost() {
  local master replica; master="$(redis_a_master)" replica="$(redis_replica_of "$master")"
  "${READ_PROBE[@]}" served-by "$master" "$PROBE_TENANT" >"$WORK/redis-slots-lost-keys.txt"
  kill_redis_node "$master" master; kill_redis_node "$replica" "its replica"
  # The surviving masters mark the pair failed after the node timeout (2 s).
  sleep 3
  "${READ_PROBE[@]}" probe "$INGRESS_URL" "$PROBE_TENANT" "$WORK/redis-slots-lost-keys.txt" \
    | tee "$WORK/redis-slots-lost-probe.txt" | sed 's/^/[faults]   /' >&2 || true
  sleep $((OUTAGE - 3))
  redis_cluster start-node "$master" >/dev/null; redis_cluster start-node "$replica" >/dev/null
  log "redis nodes $master and $replica restarted"
}
fault_redis-restart-all() {
  local port
  for port in $(redis_ports); do kill_redis_node "$port" "every node"; done
  sleep "$OUTAGE"
  redis_cluster start >/dev/null 2>&1
  log "every redis node restarted on its append-only file"
}

# What each fault does, written on its span in the scenario's chart.
fault_label() {
  case "$1" in
    consumer-kill) echo "kill -9 consumer, restarted" ;;
    ingress-kill) echo "kill -9 ingress, restarted" ;;
    broker-restart) echo "kill -9 broker, restarted after $OUTAGE s" ;;
    redis-restart) echo "Redis stopped for $OUTAGE s" ;;
    disk-full) echo "store volume full until grown" ;;
    network) echo "loopback: 20 ms delay, 1 % loss" ;;
    leader-kill) echo "kill -9 the busiest leader, restarted" ;;
    follower-kill) echo "kill -9 a follower, restarted" ;;
    quorum-loss) echo "kill -9 two of three nodes" ;;
    rolling-restart) echo "each node restarted in turn" ;;
    redis-master-kill) echo "kill -9 a Redis master" ;;
    redis-slots-lost) echo "kill -9 a master and its replica" ;;
    redis-restart-all) echo "kill -9 every Redis node" ;;
    *) echo "$1" ;;
  esac
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

# Waits (at most 60 s) until the consumer reports no stale projection: after a Redis
# fault its partitions are rebuilt from the store once Redis answers again.
wait_projections_fresh() {
  local deadline=$((SECONDS + 60)) metrics stale=""
  while ((SECONDS < deadline)); do
    if metrics="$(curl -fsS "http://$CONSUMER_ADMIN/metrics" 2>/dev/null)"; then
      # The gauge appears once a partition has gone stale.
      stale="$(awk '$1 == "consumer_projections_stale" { print $2 }' <<<"$metrics")"
      [[ "${stale:-0}" == 0 ]] && return 0
    fi
    sleep 0.5
  done
  log "projections of ${stale:-?} partitions still stale after 60 s"
}
# `consumer reconcile` of every projection against STORE, its output in FILE; prints the
# number of projections that disagree with the store, or -1 if it could not run.
reconcile() {
  local store="$1" out="$2"
  CONSUMER_STORE_DIR="$store" CONSUMER_REDIS_URL="$(pipeline_redis_url)" \
    CONSUMER_KAFKA_BROKERS="$(kafka_brokers)" RUST_LOG=error "$BIN_DIR/consumer" reconcile >"$out" 2>&1 || true
  case "$(tail -1 "$out")" in
    "projections match the store") echo 0 ;;
    *" projections disagree with the store") tail -1 "$out" | awk '{ print $1 }' ;;
    *) echo -1 ;;
  esac
}

ROWS=()
NO_CHART=()
RUN_INDEX=0
run_scenario() {
  local name="$1" why
  RUN_INDEX=$((RUN_INDEX + 1))
  why="$(unsupported "$name")"
  if [[ -n "$why" ]]; then
    log "SKIPPED $name: $why"
    ROWS+=("$(printf '%-17s SKIPPED: %s' "$name" "$why")")
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
  if [[ "$name" == redis-slots-lost ]]; then "${READ_PROBE[@]}" setup "$INGRESS_URL" "$PROBE_TENANT"; fi
  local lag="$WORK/$name-lag.txt"
  : >"$lag"
  sample_lag "$lag" &
  SAMPLER=$!
  "$BIN_DIR/loadtest" open-loop --ingress-url "$INGRESS_URL" --rate "$RATE" \
    --duration-secs "$DURATION" --out "$WORK/$name-result.json" --record "$WORK/$name-run.json" \
    >"$WORK/$name-load.txt" 2>&1 &
  local generator=$! load_start; load_start="$(now)"
  show_progress "$name ($RUN_INDEX of ${#scenarios[@]}): $RATE requests/s, fault at $FAULT_AT s" "$generator" "$DURATION" &
  local shower=$!
  QUORUM_LOST_AT="" QUORUM_BACK_AT=""
  sleep "$FAULT_AT"
  local fault_start; fault_start="$(now)"
  "fault_$name"
  local fault_end; fault_end="$(now)"
  wait "$generator" || true   # transport errors during a kill are expected and reported
  wait "$shower" || true
  local caught_up=-1
  if wait_caught_up; then caught_up="$(awk "BEGIN { print $(now) - $fault_start }")"; fi
  stop_sampler
  "$BIN_DIR/loadtest" chart timeline --result "$WORK/$name-result.json" --lag "$lag" \
    --fault-from "$fault_start" --fault-to "$fault_end" --fault-label "$(fault_label "$name")" \
    --title "$name: $RATE requests/s for $DURATION s" --out "$CHARTS_DIR/faults-$name.svg" \
    || { log "no chart for $name"; NO_CHART+=("$name"); }
  wait_projections_fresh
  stop_pipeline
  "$BIN_DIR/loadtest" verify --store-dir "$store" --record "$WORK/$name-run.json" \
    --json "$WORK/$name-verdict.json" >"$WORK/$name-verify.txt" || true
  local mismatches; mismatches="$(reconcile "$store" "$WORK/$name-reconcile.txt")"
  # Seconds of the load during which no write could be acknowledged (quorum-loss only).
  local no_quorum=()
  [[ -n "$QUORUM_LOST_AT" ]] && no_quorum=(
    "$(awk "BEGIN { print $QUORUM_LOST_AT - $load_start }")"
    "$(awk "BEGIN { print $QUORUM_BACK_AT - $load_start }")")
  ROWS+=("$(python3 - "$name" "$WORK" "$FAULT_AT" "$caught_up" "$mismatches" "${no_quorum[@]}" <<'PY'
import json, math, os, sys
name, work, fault_at, caught_up = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
mismatches = int(sys.argv[5])
no_quorum = [float(t) for t in sys.argv[6:8]]
try:
    result = json.load(open(f"{work}/{name}-result.json"))
    checks = {c["name"]: c for c in json.load(open(f"{work}/{name}-verdict.json"))["checks"]}
except (OSError, ValueError) as error:
    print(f"{name:<17} FAIL: no result or store verdict ({error}); see {work}/{name}-*.txt")
    sys.exit(0)
failures = lambda prefix: sum(len(c["failures"]) for n, c in checks.items() if n.startswith(prefix))
lost = failures("acknowledged events in the store")
doubled = failures("acknowledged events applied once")
oversold = failures("no night sold") + failures("sold units equal")
acked = sum(n for s, n in result["statuses"].items() if 200 <= int(s) < 300)
# Seconds from the fault to the end of the last second in which some request got a 5xx,
# a broken connection or was shed: after it, every answer was a 2xx or an expected 4xx.
unclean = [s for s, c in enumerate(result["timeline"])
           if s >= fault_at and (c["server_error"] or c["transport_error"] or c["shed"])]
clean_again = f"{unclean[-1] + 1 - fault_at} s" if unclean else "0 s"
# While two of three nodes are down no write reaches min.insync.replicas: a new event
# acknowledged for a request sent then (a second's margin after the kill for requests
# already in flight) would be an acknowledgement Kafka never gave. Replays of earlier
# acknowledged keys are answered 2xx from the idempotency records, rightly.
acked_without_quorum = 0
if no_quorum:
    first, last = math.ceil(no_quorum[0]) + 1, math.floor(no_quorum[1])
    acked_without_quorum = sum(c["acknowledged"] for s, c in enumerate(result["timeline"]) if first <= s < last)
# redis-slots-lost: every probe read during the outage answered as expected (503 for keys
# in the lost slots, 200 elsewhere); its summary line goes into the row.
probe_failed, note = False, ""
if name == "redis-slots-lost":
    probe_file = f"{work}/{name}-probe.txt"
    lines = open(probe_file).read().splitlines() if os.path.exists(probe_file) else []
    probe_failed = not lines or not lines[0].endswith(" 0 other answers")
    note = f"  ({lines[0] if lines else 'no probe result'})"
if no_quorum:
    note = f"  ({acked_without_quorum} new events acknowledged while the quorum was lost, {first}-{last} s)"
clean = lost == doubled == oversold == acked_without_quorum == mismatches == 0
verdict = "PASS" if clean and caught_up >= 0 and not probe_failed else "FAIL"
caught = f"{caught_up:.1f} s" if caught_up >= 0 else "never"
unmatched = str(mismatches) if mismatches >= 0 else "error"
print(f"{name:<17} {result['sent']:>8} {acked:>8} {lost:>6} {doubled:>8} {oversold:>9} {unmatched:>10} {clean_again:>14} {caught:>15}  {verdict}{note}")
PY
)")
  if [[ "$name" == disk-full ]]; then umount "$DISK"; fi
  unset CONSUMER_GROUP_ID
}

for scenario in "${scenarios[@]}"; do run_scenario "$scenario"; done

echo
printf '%-17s %8s %8s %6s %8s %9s %10s %14s %15s  %s\n' scenario requests acked lost doubled oversold mismatches "errors until" "caught up" verdict
printf '%s\n' "${ROWS[@]}"
echo "(a chart per scenario in $CHARTS_DIR/faults-<scenario>.svg)"
[[ -n "${BOOKING_KEEP_FAULTS:-}" ]] || echo "(logs and per-scenario results: rerun with BOOKING_KEEP_FAULTS=1)"
if printf '%s\n' "${ROWS[@]}" | grep -q ' FAIL'; then exit 1; fi
if ((${#NO_CHART[@]})); then log "no chart drawn for ${NO_CHART[*]}"; exit 1; fi
