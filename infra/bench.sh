#!/usr/bin/env bash
# Every stage of the pipeline beside its baseline, in one run: brings up the local stack
# (Apache Kafka and Redis), builds the release binaries, installs wrk if missing and runs
# `loadtest bench-pipeline`, which starts each server it measures on the pipeline's ports
# (INGRESS_PORT, INGRESS_ADMIN_PORT, CONSUMER_ADMIN_PORT), one at a time, and prints a
# table of ratios against targets. Extra arguments go to `loadtest bench-pipeline`, e.g.
# `--soak-secs 600` or `--secs 20`. About 4 minutes with the defaults.
#
#   infra/bench.sh
#   infra/bench.sh --soak-secs 600
#
# Refuses to run while this state directory's ingress or consumer runs: the benchmark
# needs their ports and the consumer's store to itself.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

for name in ingress consumer; do
  running "$name" && die "$name of $STATE_DIR is running; stop it first (infra/stack.sh down stops everything)"
done
"$REPO/infra/stack.sh" up
install_wrk
build_binaries

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
  --kafka-sh "$REPO/infra/kafka.sh" --logs "$LOGS" --out "$STATE_DIR/bench-pipeline.json" "${watch[@]}" "$@"
