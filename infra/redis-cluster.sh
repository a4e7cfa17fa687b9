#!/usr/bin/env bash
# A Redis Cluster on loopback from Debian's redis-server: three masters with one replica
# each, on REDIS_CLUSTER_PORT..+5 (default 7001..7006), data under the state directory.
#
#   infra/redis-cluster.sh start    start the six nodes; form the cluster the first time
#                                   (redis-cli --cluster create); wait until every node
#                                   reports cluster_state:ok
#   infra/redis-cluster.sh stop | status
#   infra/redis-cluster.sh urls     the seed URLs the pipeline's Redis URL setting takes
#   infra/redis-cluster.sh stop-node PORT | start-node PORT
#                                   one node, for fault scenarios (SIGKILL with --kill)
#
# Every node persists to an append-only file, so a restart of all six comes back with its
# data and its place in the cluster (nodes.conf). A master that stops for longer than
# the node timeout (2 s) is replaced by its replica. Should a master and its replica both
# be gone, the other masters go on serving their own slots (cluster-require-full-coverage
# no): only keys in the lost slots fail, where the pipeline already copes with Redis away.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CLUSTER_DIR="$STATE_DIR/redis-cluster"
NODE_TIMEOUT_MS=2000

ports() { seq "$REDIS_CLUSTER_PORT" $((REDIS_CLUSTER_PORT + 5)); }

start_node() {
  local port="$1" name="redis-cluster-$1"
  if running "$name"; then return; fi
  port_open "$port" && die "port $port is taken by a process this script did not start"
  mkdir -p "$CLUSTER_DIR/$port" "$PIDS" "$LOGS"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$CLUSTER_DIR/$port" \
    --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-node-timeout "$NODE_TIMEOUT_MS" --cluster-require-full-coverage no \
    --appendonly yes --appendfsync everysec --save "" --daemonize no \
    --logfile "$LOGS/$name.log" </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
}

node_up() { [[ "$(redis-cli -p "$1" ping 2>/dev/null)" == PONG ]]; }

cluster_ok() {
  local port
  for port in $(ports); do
    redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}

# Formed once: afterwards every node finds the others through its nodes.conf.
formed() { redis-cli -p "$REDIS_CLUSTER_PORT" cluster info 2>/dev/null | grep -q '^cluster_known_nodes:6'; }

start() {
  local port nodes=()
  install_redis
  for port in $(ports); do start_node "$port"; nodes+=("127.0.0.1:$port"); done
  for port in $(ports); do wait_for "redis cluster node $port" 30 node_up "$port"; done
  if ! formed; then
    log "forming the Redis Cluster: 3 masters, 1 replica each"
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$LOGS/redis-cluster-create.log" 2>&1 \
      || { cat "$LOGS/redis-cluster-create.log" >&2; die "redis-cli --cluster create failed"; }
  fi
  wait_for "redis cluster" 60 cluster_ok
  log "Redis Cluster ready on 127.0.0.1:$REDIS_CLUSTER_PORT..$((REDIS_CLUSTER_PORT + 5)) ($(redis_cluster_urls))"
}

case "${1:-status}" in
  start) start ;;
  stop) for port in $(ports); do stop "redis-cluster-$port"; done ;;
  status)
    for port in $(ports); do
      if running "redis-cluster-$port"; then
        role="$(redis-cli -p "$port" role 2>/dev/null | head -1)"
        echo "redis-cluster-$port: running (pid $(cat "$PIDS/redis-cluster-$port.pid"), ${role:-no answer})"
      else
        echo "redis-cluster-$port: stopped"
      fi
    done
    ;;
  urls) redis_cluster_urls; echo ;;
  stop-node)
    port="${2:?port}"
    if [[ "${3:-}" == --kill ]] && running "redis-cluster-$port"; then
      kill -KILL "$(cat "$PIDS/redis-cluster-$port.pid")"
      rm -f "$PIDS/redis-cluster-$port.pid"
      log "killed redis-cluster-$port"
    else
      stop "redis-cluster-$port"
    fi
    ;;
  start-node)
    start_node "${2:?port}"
    wait_for "redis cluster node $2" 30 node_up "$2"
    ;;
  *) die "usage: $0 start|stop|status|urls|stop-node PORT [--kill]|start-node PORT" ;;
esac
