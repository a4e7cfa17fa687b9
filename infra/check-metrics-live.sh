#!/usr/bin/env bash
# Checks the dashboard's and alert rules' metric names against live /metrics pages.
#
# Starts a private copy of the local stack (Kafka and Redis on their own ports, in their
# own state directory), the ingress and a consumer with their own API and admin ports,
# pushes a small demo load through them so the metrics get recorded, then runs
# infra/check-metrics.py --scrape against both admin ports, and stops everything it
# started (by recorded PID). Ports are free ones chosen at start (or KAFKA_PORT,
# REDIS_PORT, INGRESS_PORT, INGRESS_ADMIN_PORT, CONSUMER_ADMIN_PORT), so this can run beside a
# demo stack. Extra arguments go to check-metrics.py (e.g. --strict).
#
#   infra/check-metrics-live.sh
set -euo pipefail

# The state directory and ports must be chosen before common.sh reads them.
OWN_STATE=""
if [[ -z "${BOOKING_STATE_DIR:-}" ]]; then
  OWN_STATE="$(mktemp -d /tmp/booking-metrics.XXXXXX)"
  export BOOKING_STATE_DIR="$OWN_STATE"
fi
# Free ports picked by the kernel unless given, so nothing else on the machine is disturbed.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export KAFKA_PORT="${KAFKA_PORT:-$(free_port)}" REDIS_PORT="${REDIS_PORT:-$(free_port)}"
export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$(free_port)}"
export INGRESS_PORT="${INGRESS_PORT:-$(free_port)}" INGRESS_ADMIN_PORT="${INGRESS_ADMIN_PORT:-$(free_port)}"
export CONSUMER_ADMIN_PORT="${CONSUMER_ADMIN_PORT:-$(free_port)}"
export FEED_ADMIN_PORT="${FEED_ADMIN_PORT:-$(free_port)}"
export DELIVER_ADMIN_PORT="${DELIVER_ADMIN_PORT:-$(free_port)}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
log() { printf '[metrics-live] %s\n' "$*" >&2; }

cleanup() {
  stop ingress || true
  stop consumer || true
  "$REPO/infra/stack.sh" down || true
  [[ -n "$OWN_STATE" ]] && rm -rf "$OWN_STATE"
}
trap cleanup EXIT

"$REPO/infra/stack.sh" up
build_binaries

# Statistics every second, so the lag gauge is recorded within the run.
CONSUMER_STATS_INTERVAL_MS=1000 start_pipeline

log "pushing a small demo load so the metrics are recorded"
"$BIN_DIR/loadtest" demo --ingress-url "$INGRESS_URL" \
  --redis-url "redis://127.0.0.1:$REDIS_PORT/" --bookings 200 --contention-requests 20 \
  --record "$STATE_DIR/run.json" >"$LOGS/loadtest.log" 2>&1 \
  || log "the demo load reported a problem (see $LOGS/loadtest.log); checking the scrape anyway"
sleep 2

python3 "$REPO/infra/check-metrics.py" \
  --scrape "http://$INGRESS_ADMIN/metrics" --scrape "http://$CONSUMER_ADMIN/metrics" "$@"
