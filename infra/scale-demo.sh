#!/usr/bin/env bash
# Scaling by queue depth, shown on the local stack: lag per partition before and after
# adding consumer processes. Lag here is what KEDA's Kafka scaler reads (`consumer lag`:
# each partition's log end minus the group's committed offset, from the broker).
#
#   infra/scale-demo.sh [--events N] [--consumers N] [--phase-secs S]
#
# It runs on a topic, consumer group and store directory of its own, so the demo's data
# is untouched: it produces N synthetic events with no consumer running (the lag a
# traffic burst leaves), starts one consumer and prints lag every 2 s for S seconds, then
# starts the other consumers and prints lag until it reaches zero (at most 180 s), and
# ends with the drain rate of each phase, and draws lag per partition over the run with
# the consumer starts marked to $CHARTS_DIR/scale-demo-lag.svg (BOOKING_CHARTS_DIR; by
# default charts/ in the state directory). Every process it starts is stopped on exit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

EVENTS=240000
CONSUMERS=3
PHASE_SECS=8
DRAIN_LIMIT_SECS=180
ADMIN_PORT_BASE="${SCALE_ADMIN_PORT_BASE:-9180}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) EVENTS="$2"; shift 2 ;;
    --consumers) CONSUMERS="$2"; shift 2 ;;
    --phase-secs) PHASE_SECS="$2"; shift 2 ;;
    *) die "unknown argument $1 (expected --events, --consumers, --phase-secs)" ;;
  esac
done
((CONSUMERS >= 2)) || die "--consumers must be at least 2 to show scaling"

"$REPO/infra/stack.sh" up
build_binaries

RUN="scale-$(date +%s)"
WORK="$STATE_DIR/$RUN"
mkdir -p "$WORK"
export CONSUMER_KAFKA_BROKERS="$(kafka_brokers)"
export CONSUMER_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
export CONSUMER_BOOKINGS_TOPIC="$RUN-bookings"
export CONSUMER_DECISIONS_TOPIC="$RUN-decisions"
export CONSUMER_DLQ_TOPIC="$RUN-dlq"
export CONSUMER_GROUP_ID="$RUN-consumers"
export CONSUMER_STORE_DIR="$WORK/store"

consumer_pids=()
cleanup() {
  for pid in "${consumer_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${consumer_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK/store"
}
trap cleanup EXIT

start_consumer() {
  local n="$1"
  CONSUMER_ADMIN_ADDR="127.0.0.1:$((ADMIN_PORT_BASE + n))" \
    "$BIN_DIR/consumer" </dev/null >>"$WORK/consumer-$n.log" 2>&1 &
  consumer_pids+=("$!")
  log "started consumer $n (pid $!), log $WORK/consumer-$n.log"
}

RUST_LOG=warn "$BIN_DIR/consumer" ensure-topics >/dev/null
log "topic $CONSUMER_BOOKINGS_TOPIC (12 partitions), group $CONSUMER_GROUP_ID"
"$BIN_DIR/loadtest" produce --brokers "$CONSUMER_KAFKA_BROKERS" \
  --topic "$CONSUMER_BOOKINGS_TOPIC" --events "$EVENTS" --tenant "$RUN"

# Arithmetic on fractional seconds, with awk (no bc needed).
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
now() { date +%s.%N; }

started_at="$(now)"
last_total=0
# Every sample also goes to LAG_FILE, with the moments consumers were added, for the chart.
LAG_FILE="$WORK/lag.txt"
marks=()
# One line per sample: seconds since the first consumer started, consumers running, total
# lag, then the lag of partitions 0..11.
sample() {
  local line total
  line="$(RUST_LOG=error "$BIN_DIR/consumer" lag --one-line)"
  printf '%s %s\n' "$(now)" "$line" >>"$LAG_FILE"
  total="${line%% |*}"; total="${total#total=}"
  last_total="$total"
  # shellcheck disable=SC2086 # the per-partition lags are meant to split into columns
  printf '%7.1f %9d %8d |%s\n' "$(calc "$(now) - $started_at")" \
    "${#consumer_pids[@]}" "$total" "$(printf ' %6d' ${line#*|})"
}
header() {
  printf '%7s %9s %8s |' "t (s)" consumers "lag"
  for p in $(seq 0 11); do printf ' %6s' "p$p"; done
  printf '\n'
}

echo
echo "lag per partition (events not yet applied), sampled every 2 s"
header
sample
before="$last_total"

start_consumer 1
marks+=(--mark "$(now)=1 consumer")
phase_start="$(now)"
end=$((SECONDS + PHASE_SECS))
while ((SECONDS < end)); do sleep 2; sample; done
one_consumer_drained=$((before - last_total))
one_consumer_secs="$(calc "$(now) - $phase_start")"

for n in $(seq 2 "$CONSUMERS"); do start_consumer "$n"; done
marks+=(--mark "$(now)=$CONSUMERS consumers")
echo "--- $CONSUMERS consumers from here ---"
phase_start="$(now)"
at_scale_from="$last_total"
end=$((SECONDS + DRAIN_LIMIT_SECS))
while ((last_total > 0 && SECONDS < end)); do sleep 2; sample; done
scaled_secs="$(calc "$(now) - $phase_start")"

echo
printf 'lag before any consumer        %8d events\n' "$before"
printf '1 consumer for %5.1f s         drained %8d events (%6.0f events/s)\n' \
  "$one_consumer_secs" "$one_consumer_drained" \
  "$(calc "$one_consumer_drained / $one_consumer_secs")"
printf '%d consumers for %5.1f s        drained %8d events (%6.0f events/s, group join included)\n' \
  "$CONSUMERS" "$scaled_secs" "$((at_scale_from - last_total))" \
  "$(calc "($at_scale_from - $last_total) / $scaled_secs")"
"$BIN_DIR/loadtest" chart partition-lag --lag "$LAG_FILE" "${marks[@]}" \
  --title "Lag per partition: $EVENTS events, 1 consumer, then $CONSUMERS" \
  --out "$CHARTS_DIR/scale-demo-lag.svg"
echo "chart: $CHARTS_DIR/scale-demo-lag.svg"
if ((last_total > 0)); then
  log "lag still $last_total after ${DRAIN_LIMIT_SECS}s (logs: $WORK)"
  exit 1
fi
echo "lag is zero on every partition"
