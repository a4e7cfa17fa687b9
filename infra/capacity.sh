#!/usr/bin/env bash
# The per-event and per-request inputs of docs/CAPACITY.md, measured in one run on a stack
# of its own (its own state directory and ports, so it runs beside the default stack):
#
#   (a) consumer CPU per applied event, on 12 partitions and on 1, from a backlog drained
#       by one consumer (group join included), with the drain rate; on 12 partitions a
#       second time with every event marked as waited for (the `reply-partition` header
#       a `Prefer: wait` request sets), so the consumer also copies each decision to the
#       replies topic: the difference is what the copies cost;
#   (b) the ingress's replies reader, CPU per decision read: an idle ingress alone in its
#       replies group reads every reply of that second drain;
#   (c) Redis CPU per applied event (projections) and per request (the two-tier dedup),
#       and Redis's command counts from INFO commandstats (one command is one round trip),
#       on a single Redis and again on a Redis Cluster of three masters with one replica
#       each, side by side with their ratio;
#   (d) bytes per record on `bookings`, `booking-decisions` and `booking-replies` as Kafka
#       stores them, and
#       Redis bytes per key of each kind (MEMORY USAGE of a sample).
#
# CPU time is utime + stime from /proc/PID/stat before and after each bounded run, divided
# by the events or requests of that run.
#
#   infra/capacity.sh [--events N] [--rate R] [--duration-secs S]
set -euo pipefail

export BOOKING_STATE_DIR="${BOOKING_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/booking-pipeline-capacity}"
# Below Linux's ephemeral range (32768-60999 by default), so no outgoing connection of
# another process can be holding one of them when its server starts (the Redis Cluster's
# bus ports, its ports + 10000, included).
export KAFKA_PORT="${KAFKA_PORT:-29092}" REDIS_PORT="${REDIS_PORT:-26379}" REDIS_CLUSTER_PORT="${REDIS_CLUSTER_PORT:-17101}"
export INGRESS_PORT="${INGRESS_PORT:-28080}" INGRESS_ADMIN_PORT="${INGRESS_ADMIN_PORT:-29080}"
export CONSUMER_ADMIN_PORT="${CONSUMER_ADMIN_PORT:-29081}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

events=100000 rate=2500 duration=20
while (($#)); do
  case "$1" in
    --events) events="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --duration-secs) duration="$2"; shift 2 ;;
    *) die "usage: $0 [--events N] [--rate R] [--duration-secs S]" ;;
  esac
done
((events > 0 && events <= 1000000 && duration > 0 && duration <= 300)) \
  || die "--events must be 1..1000000 and --duration-secs 1..300"

cpu() { awk -v t="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12+$13)/t }' "/proc/$1/stat"; }
us_per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { print b - a }'; }
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# The Redis under test (use_redis node|cluster): the URL the pipeline is given, and the
# ports of its masters and of its replicas.
use_redis() {
  REDIS_KIND="$1" MASTERS=() REPLICAS=()
  if [[ "$1" == node ]]; then
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/" MASTERS=("$REDIS_PORT")
    return
  fi
  REDIS_URL="$(redis_cluster_urls)"
  local port
  for port in $(seq "$REDIS_CLUSTER_PORT" $((REDIS_CLUSTER_PORT + 5))); do
    if [[ "$(redis-cli -p "$port" role | head -1)" == master ]]; then MASTERS+=("$port"); else REPLICAS+=("$port"); fi
  done
}
redis_pid() { if [[ "$1" == "$REDIS_PORT" ]]; then cat "$PIDS/redis.pid"; else cat "$PIDS/redis-cluster-$1.pid"; fi; }
# CPU seconds of the Redis servers on PORTS, summed.
redis_cpu() {
  local port
  for port in "$@"; do cpu "$(redis_pid "$port")"; done | awk '{ s += $1 } END { printf "%.2f\n", s }'
}
redis_resetstat() { local port; for port in "${MASTERS[@]}" "${REPLICAS[@]}"; do redis-cli -p "$port" config resetstat >/dev/null; done; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# A scratch stack: every run starts from empty topics and an empty Redis.
"$REPO/infra/stack.sh" reset >/dev/null 2>&1
"$REPO/infra/stack.sh" up --redis-cluster
build_binaries
trap '"$REPO/infra/stack.sh" down >/dev/null 2>&1 || true' EXIT
KAFKA_PID="$(cat "$PIDS/kafka-1.pid")"
BROKERS="$(kafka_brokers)"
ROWS=()
row() { ROWS+=("$(printf '| %s | %s |' "$1" "$2")"); }
# The Redis figures of each kind, for the side-by-side table: REDIS_COST[kind,figure].
declare -A REDIS_COST
# Round trips to Redis a process has made (its redis_round_trips_total), from its admin port.
round_trips() { curl -fsS "http://$1/metrics" | awk '$1 == "redis_round_trips_total" { print $2 }'; }
# Records the Redis figures of a run of N operations (events or requests) as WHAT.
redis_figures() {
  local what="$1" n="$2" masters="$3" replicas="$4" trips="$5"
  REDIS_COST[$REDIS_KIND,$what,masters]="$(us_per 0 "$masters" "$n")"
  REDIS_COST[$REDIS_KIND,$what,replicas]="—"
  ((${#REPLICAS[@]})) && REDIS_COST[$REDIS_KIND,$what,replicas]="$(us_per 0 "$replicas" "$n")"
  REDIS_COST[$REDIS_KIND,$what,trips]="$(awk -v t="${trips:-0}" -v n="$n" 'BEGIN { printf "%.2f", t / n }')"
  REDIS_COST[$REDIS_KIND,$what,commands]="$(commands_per "$n")"
}

# Commands the masters ran per N since the last reset, in all and by command, e.g.
# "total=2.00: evalsha=1.00 set=1.00". Scripts count once, plus the commands they call.
commands_per() {
  local port
  for port in "${MASTERS[@]}"; do redis-cli -p "$port" info commandstats; done | tr -d '\r' \
    | awk -F'[_:=,]' -v n="$1" '
        /^cmdstat_/ { name = $2; gsub(/\|/, " ", name); calls[name] += $4; if (name != "cluster") total += $4 }
        END {
          printf "total=%.2f:", total / n
          for (c in calls) if (calls[c] / n >= 0.01) printf " %s=%.2f", c, calls[c] / n
        }'
}

# (a), (b), (c) on a backlog of N synthetic events on a fresh topic of PARTITIONS, every
# event waited for when WAITED is 1.
drain() {
  local partitions="$1" n="$2" waited="${3:-0}" run="cap-$1p-$RANDOM"
  export CONSUMER_KAFKA_BROKERS="$BROKERS" CONSUMER_BOOKINGS_TOPIC="$run-bookings" \
    CONSUMER_DECISIONS_TOPIC="$run-decisions" CONSUMER_REPLIES_TOPIC="$run-replies" CONSUMER_DLQ_TOPIC="$run-dlq" \
    CONSUMER_GROUP_ID="$run" CONSUMER_STORE_DIR="$STATE_DIR/$run-store" \
    CONSUMER_REDIS_URL="$REDIS_URL" CONSUMER_ADMIN_ADDR="$CONSUMER_ADMIN" \
    TOPICS_BOOKINGS_PARTITIONS="$partitions" RUST_LOG=error
  "$BIN_DIR/consumer" ensure-topics
  "$BIN_DIR/loadtest" produce --brokers "$BROKERS" --topic "$run-bookings" \
    --partitions "$partitions" --events "$n" --tenant "$run" --reply-partitions "$((waited ? 12 : 0))" >/dev/null
  # The replies reader of an ingress that serves nothing, alone in its group so it reads
  # every reply: its CPU is the reader's.
  start_process ingress env INGRESS_PARTNERS_FILE="$REPO/infra/dev-partners.json" \
    INGRESS_LISTEN="127.0.0.1:$INGRESS_PORT" INGRESS_ADMIN_LISTEN="$INGRESS_ADMIN" \
    INGRESS_KAFKA_BROKERS="$BROKERS" INGRESS_REDIS_URL="$REDIS_URL" \
    INGRESS_REPLIES_TOPIC="$run-replies" INGRESS_REPLIES_GROUP="$run-ingress" "$BIN_DIR/ingress"
  wait_for ingress 30 ready "$INGRESS_ADMIN"
  redis_resetstat
  local ing_pid r0 rr0 k0 i0 start line=""
  ing_pid="$(cat "$PIDS/ingress.pid")"
  r0="$(redis_cpu "${MASTERS[@]}")" rr0="$(redis_cpu "${REPLICAS[@]}")"
  k0="$(cpu "$KAFKA_PID")" i0="$(cpu "$ing_pid")" start="$(date +%s.%N)"
  start_process consumer "$BIN_DIR/consumer"
  # The steady rate counts from the first poll that sees progress, so the group join and
  # the first fetch are left out; the join-included rate is the one a fresh consumer shows.
  local consumer_pid deadline=$((SECONDS + 300)) lag="$n" first="" first_lag=""
  consumer_pid="$(cat "$PIDS/consumer.pid")"
  until [[ "$lag" == 0 ]]; do
    ((SECONDS < deadline)) || die "consumer did not drain $n events in 300 s: $line"
    sleep 0.2
    line="$("$BIN_DIR/consumer" lag --one-line 2>/dev/null || true)"
    [[ "$line" =~ ^total=([0-9]+) ]] || continue
    lag="${BASH_REMATCH[1]}"
    if [[ -z "$first" ]] && ((lag < n)); then first="$(date +%s.%N)" first_lag="$lag"; fi
  done
  local end secs steady c1 r1 rr1 k1 i1 trips
  end="$(date +%s.%N)"
  secs="$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }')"
  steady="$(awk -v s="$first" -v e="$end" -v n="$first_lag" 'BEGIN { printf "%.0f ev/s (%d events in %.2f s)", n / (e - s), n, e - s }')"
  c1="$(cpu "$consumer_pid")" r1="$(redis_cpu "${MASTERS[@]}")" rr1="$(redis_cpu "${REPLICAS[@]}")"
  k1="$(cpu "$KAFKA_PID")" i1="$(cpu "$ing_pid")" trips="$(round_trips "$CONSUMER_ADMIN")"
  sleep 1  # the reader's last fetch
  i1="$(cpu "$ing_pid")"
  local stats
  stats="$(commands_per "$n")"
  ((partitions == 12 && !waited)) && redis_figures event "$n" "$(minus "$r0" "$r1")" "$(minus "$rr0" "$rr1")" "$trips"
  stop consumer
  stop ingress
  local on="$partitions partition(s), Redis $REDIS_KIND"
  ((waited)) && on="$on, every event waited for"
  row "(a) consumer CPU per applied event, $on, $n events" "$(us_per 0 "$c1" "$n") µs"
  row "(a) drain rate, 1 consumer, join included, $on" "$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') ev/s ($secs s)"
  row "(a) drain rate, 1 consumer, from the first applied event, $on" "$steady"
  ((waited)) && row "(b) ingress replies reader CPU per decision read (idle share included), $on" "$(us_per "$i0" "$i1" "$n") µs"
  row "(c) Redis CPU per applied event (projections), masters, $on" "$(us_per "$r0" "$r1" "$n") µs"
  ((${#REPLICAS[@]})) && row "(c) Redis CPU per applied event (projections), replicas, $on" "$(us_per "$rr0" "$rr1" "$n") µs"
  row "(c) Redis round trips per applied event, $on" "$(awk -v t="${trips:-0}" -v n="$n" 'BEGIN { printf "%.2f", t / n }')"
  row "(c) Redis commands per applied event, masters, $on" "$stats"
  row "Kafka CPU per applied event (fetch + decisions produce), $on" "$(us_per "$k0" "$k1" "$n") µs"
  DECISIONS_TOPIC="$run-decisions" REPLIES_TOPIC="$run-replies"
  DRAINED_TENANT="$run"
}

# Bytes Kafka stores per record of TOPIC (every partition's segments), N records.
bytes_per_record() {
  local bytes
  bytes="$(cat "$STATE_DIR"/kafka/node-1/data/"$1"-*/*.log | wc -c)"
  awk -v b="$bytes" -v n="$2" 'BEGIN { printf "%.0f B", b / n }'
}

# Average MEMORY USAGE over up to 300 keys matching PATTERN.
bytes_per_key() {
  local keys
  mapfile -t keys < <(rcli --scan --pattern "$1" | head -300)
  ((${#keys[@]})) || { echo "no keys"; return; }
  local k total=0
  for k in "${keys[@]}"; do total=$((total + $(rcli memory usage "$k" samples 0))); done
  echo "$((total / ${#keys[@]})) B (${#keys[@]} keys)"
}

# (b), (c) per request: the ingress alone (no consumer), Kafka sink, rate limits lifted,
# at a fixed open-loop rate.
per_request() {
  log "(c) per request, Redis $REDIS_KIND: open loop at $rate/s for $duration s"
  start_process ingress env INGRESS_PARTNERS_FILE="$REPO/infra/dev-partners.json" \
    INGRESS_LISTEN="127.0.0.1:$INGRESS_PORT" INGRESS_ADMIN_LISTEN="$INGRESS_ADMIN" \
    INGRESS_KAFKA_BROKERS="$BROKERS" INGRESS_REDIS_URL="$REDIS_URL" \
    INGRESS_RATE_LIMIT_PER_SEC=1000000 INGRESS_RATE_LIMIT_BURST=1000000 RUST_LOG=error "$BIN_DIR/ingress"
  wait_for ingress 30 ready "$INGRESS_ADMIN"
  local ing_pid before_bookings after_bookings r0 r1 rr0 rr1 k0 k1 i0 i1 trips0 trips1 answered accepted
  ing_pid="$(cat "$PIDS/ingress.pid")"
  before_bookings="$(cat "$STATE_DIR"/kafka/node-1/data/bookings-*/*.log | wc -c)"
  redis_resetstat
  trips0="$(round_trips "$INGRESS_ADMIN")"
  r0="$(redis_cpu "${MASTERS[@]}")" rr0="$(redis_cpu "${REPLICAS[@]}")" k0="$(cpu "$KAFKA_PID")" i0="$(cpu "$ing_pid")"
  "$BIN_DIR/loadtest" open-loop --ingress-url "$INGRESS_URL" --rate "$rate" --duration-secs "$duration" \
    --out "$STATE_DIR/capacity-open-loop.json" --record "$STATE_DIR/capacity-open-loop-run.json" >/dev/null
  r1="$(redis_cpu "${MASTERS[@]}")" rr1="$(redis_cpu "${REPLICAS[@]}")" k1="$(cpu "$KAFKA_PID")" i1="$(cpu "$ing_pid")"
  trips1="$(round_trips "$INGRESS_ADMIN")"
  stop ingress
  answered="$(json "$STATE_DIR/capacity-open-loop.json" 'd["all_latency_ms"]["count"]')"
  accepted="$(json "$STATE_DIR/capacity-open-loop.json" 'd["statuses"].get("202", 0)')"
  after_bookings="$(cat "$STATE_DIR"/kafka/node-1/data/bookings-*/*.log | wc -c)"
  redis_figures request "$answered" "$(minus "$r0" "$r1")" "$(minus "$rr0" "$rr1")" "$(minus "${trips0:-0}" "$trips1")"
  local on="Redis $REDIS_KIND"
  row "(b) ingress CPU per request, Kafka sink, $rate/s open loop ($answered answers, $accepted accepted), $on" "$(us_per "$i0" "$i1" "$answered") µs"
  row "(c) Redis CPU per request (dedup, no consumer), masters, $on" "${REDIS_COST[$REDIS_KIND,request,masters]} µs"
  ((${#REPLICAS[@]})) && row "(c) Redis CPU per request (dedup, no consumer), replicas, $on" "${REDIS_COST[$REDIS_KIND,request,replicas]} µs"
  row "(c) Redis round trips per request, $on" "${REDIS_COST[$REDIS_KIND,request,trips]}"
  row "(c) Redis commands per request, masters, $on" "${REDIS_COST[$REDIS_KIND,request,commands]}"
  row "Kafka CPU per accepted request (one-record produces), $on" "$(us_per "$k0" "$k1" "$accepted") µs"
  row "(d) \`bookings\` record from the ingress, as stored, $on" \
    "$(awk -v b="$((after_bookings - before_bookings))" -v n="$accepted" 'BEGIN { printf "%.0f B", b / n }')"
}

use_redis node
log "(a)-(c) 12 partitions, $events events, Redis node"
drain 12 "$events"
row "(d) \`booking-decisions\` record as stored" "$(bytes_per_record "$DECISIONS_TOPIC" "$events")"
row "(d) Redis booking status (\`booking:*\`)" "$(bytes_per_key 'booking:*')"
row "(d) Redis availability (\`avail:$DRAINED_TENANT:*\`)" "$(bytes_per_key "avail:$DRAINED_TENANT:*")"
log "(a), (b) 12 partitions, $events events, every one waited for, Redis node"
drain 12 "$events" 1
row "(d) \`booking-replies\` record as stored" "$(bytes_per_record "$REPLIES_TOPIC" "$events")"
log "(a)-(c) 1 partition, $((events / 4)) events, Redis node"
drain 1 "$((events / 4))"
per_request
row "(d) Redis idempotency record (\`idem:*\`)" "$(bytes_per_key 'idem:*')"

use_redis cluster
log "(a)-(c) 12 partitions, $events events, Redis Cluster (masters ${MASTERS[*]}, replicas ${REPLICAS[*]})"
drain 12 "$events"
per_request

echo
echo "capacity inputs, $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| input | measured |"
echo "|---|---|"
printf '%s\n' "${ROWS[@]}"

echo
echo "Redis, single node against a Redis Cluster of three masters with one replica each (same run)"
echo
echo "| per | figure | node | cluster | cluster / node |"
echo "|---|---|---|---|---|"
for what in event request; do
  label="applied event (projections, 12 partitions)"
  [[ "$what" == request ]] && label="request (dedup, $rate/s)"
  for figure in masters replicas trips; do
    node="${REDIS_COST[node,$what,$figure]}" cluster="${REDIS_COST[cluster,$what,$figure]}"
    case "$figure" in
      masters) name="CPU µs, masters" ;;
      replicas) name="CPU µs, replicas" ;;
      trips) name="round trips" ;;
    esac
    ratio="$(awk -v a="$node" -v b="$cluster" 'BEGIN { if (a + 0 > 0) printf "%.2f", b / a; else print "—" }')"
    echo "| $label | $name | $node | $cluster | $ratio |"
  done
  echo "| $label | commands on the masters | ${REDIS_COST[node,$what,commands]} | ${REDIS_COST[cluster,$what,commands]} | |"
done
