#!/usr/bin/env bash
# Every stage of the pipeline beside its baseline, in one run: brings up the local stack
# (Apache Kafka and Redis), builds the release binaries, installs wrk if missing and runs
# `loadtest bench-pipeline`, which starts each server it measures on the pipeline's ports
# (INGRESS_PORT, INGRESS_ADMIN_PORT, CONSUMER_ADMIN_PORT), one at a time, and prints a
# table of ratios against targets; stage 3's charts (latency against rate, latency
# distributions) go to $CHARTS_DIR (BOOKING_CHARTS_DIR; by default charts/ in the state
# directory). Extra arguments go to `loadtest bench-pipeline`, e.g.
# `--soak-secs 600` or `--secs 20`. About 7 minutes with the defaults.
#
#   infra/bench.sh
#   infra/bench.sh --soak-secs 600
#   KAFKA_BRIDGE_ARCHIVE=~/Downloads/kafka-bridge-0.33.1.tar.gz infra/bench.sh
#
# Stage 3 sets the ingress beside the Strimzi Kafka Bridge (0.32/0.33 run on Java 17), the
# HTTP-to-Kafka bridge a user could deploy instead. Maven Central does not serve the bridge,
# so its release archive is brought by the user: KAFKA_BRIDGE_ARCHIVE unpacks it once into
# the cache, where later runs find it; KAFKA_BRIDGE_HOME names an unpacked one instead.
# Without either, stage 3 prints why it did not run and the other stages run as usual.
#
# Refuses to run while this state directory's ingress or consumer runs: the benchmark
# needs their ports and the consumer's store to itself.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

for name in ingress consumer feed deliver; do
  running "$name" && die "$name of $STATE_DIR is running; stop it first (infra/stack.sh down stops everything)"
done
"$REPO/infra/stack.sh" up
install_wrk
build_binaries

BRIDGE_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/booking-pipeline/kafka-bridge"
if [[ -n "${KAFKA_BRIDGE_ARCHIVE:-}" ]]; then
  [[ -f "$KAFKA_BRIDGE_ARCHIVE" ]] || die "KAFKA_BRIDGE_ARCHIVE=$KAFKA_BRIDGE_ARCHIVE is not a file"
  KAFKA_BRIDGE_ARCHIVE="$(realpath "$KAFKA_BRIDGE_ARCHIVE")"
  name="$(basename "$KAFKA_BRIDGE_ARCHIVE")"
  name="${name%.tar.gz}"; name="${name%.tgz}"; name="${name%.zip}"
  if [[ ! -d "$BRIDGE_CACHE/$name/libs" ]]; then
    log "unpacking $KAFKA_BRIDGE_ARCHIVE into $BRIDGE_CACHE"
    mkdir -p "$BRIDGE_CACHE"
    case "$KAFKA_BRIDGE_ARCHIVE" in
      *.zip) (cd "$BRIDGE_CACHE" && unzip -q "$KAFKA_BRIDGE_ARCHIVE") ;;
      *) tar -xzf "$KAFKA_BRIDGE_ARCHIVE" -C "$BRIDGE_CACHE" ;;
    esac
  fi
  export KAFKA_BRIDGE_HOME="$BRIDGE_CACHE/$name"
elif [[ -z "${KAFKA_BRIDGE_HOME:-}" ]]; then
  # The newest one unpacked by an earlier run, if any.
  found="$(ls -d "$BRIDGE_CACHE"/kafka-bridge-*/libs 2>/dev/null | sort -V | tail -1 || true)"
  if [[ -n "$found" ]]; then export KAFKA_BRIDGE_HOME="${found%/libs}"; fi
fi

# Their CPU use is reported beside each stage's.
watch=()
running kafka-1 && watch+=(--broker-pid "$(cat "$PIDS/kafka-1.pid")")
running redis && watch+=(--redis-pid "$(cat "$PIDS/redis.pid")")
cd "$REPO"
"$BIN_DIR/loadtest" bench-pipeline \
  --brokers "$(kafka_brokers)" --redis-url "redis://127.0.0.1:$REDIS_PORT/" \
  --partners-file "$REPO/infra/dev-partners.json" \
  --port "$INGRESS_PORT" --admin-port "$INGRESS_ADMIN_PORT" \
  --consumer-admin-port "$CONSUMER_ADMIN_PORT" --store-dir "$STORE_DIR" \
  --kafka-sh "$REPO/infra/kafka.sh" --logs "$LOGS" --out "$STATE_DIR/bench-pipeline.json" --charts-dir "$CHARTS_DIR" "${watch[@]}" "$@"
