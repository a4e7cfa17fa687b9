#!/usr/bin/env bash
# Apache Kafka (KRaft, combined broker+controller nodes) on loopback, from the jars Maven
# Central serves: the pinned version in infra/kafka/pom.xml is resolved once into a cache
# outside the repository and reused by the stack, the tests and the benchmarks.
#
#   infra/kafka.sh install               resolve the jars into the cache (skipped when there)
#   infra/kafka.sh start [--nodes 1|3]   format the nodes' storage (first time) and start them
#   infra/kafka.sh stop | status
#   infra/kafka.sh brokers               bootstrap servers of the running stack, comma-separated
#   infra/kafka.sh run-node DIR PORT CONTROLLER_PORT
#                                        one standalone node in the foreground, data in DIR
#                                        (tests own such a broker: they kill and restart it)
#   infra/kafka.sh tool NAME [ARGS...]   one of Kafka's CLI tools, e.g.
#                                        tool kafka-topics --bootstrap-server 127.0.0.1:9092 --list
#
# One node listens on KAFKA_PORT (9092); three listen on KAFKA_PORT..+2, each with its
# controller on KAFKA_CONTROLLER_PORT..+2 (default KAFKA_PORT + 100). Heaps: KAFKA_HEAP_MB
# per node (1024 for one node, 768 each for three), sized so three nodes, Cassandra, Redis,
# a release build and the tests fit in 24 GiB together.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KAFKA_POM="$REPO/infra/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM")"
KAFKA_HOME="${BOOKING_KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/booking-pipeline/kafka-$KAFKA_VERSION}"
KAFKA_LOG_CONFIG="$REPO/infra/kafka/log4j2.properties"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 100))}"
KAFKA_DIR="$STATE_DIR/kafka"
KAFKA_STOP_GRACE_SECS=60

# The cache is complete only when its marker holds the digest of the pom it was resolved
# from, so an edited pom (another version, another logging backend) resolves again.
install_kafka() {
  local digest
  digest="$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
  [[ "$(cat "$KAFKA_HOME/.resolved" 2>/dev/null)" == "$digest" ]] && return
  command -v mvn >/dev/null || die "Maven (mvn) is needed to obtain Apache Kafka"
  rm -rf "$KAFKA_HOME/libs"
  mkdir -p "$KAFKA_HOME"
  step "resolving Apache Kafka $KAFKA_VERSION from Maven Central into $KAFKA_HOME" \
    mvn -B -q -f "$KAFKA_POM" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$KAFKA_HOME/libs" \
    || die "could not resolve Apache Kafka (its output above)"
  echo "$digest" >"$KAFKA_HOME/.resolved"
}

# Runs a main class on Kafka's classpath with the JVM flags Kafka's own scripts use (G1,
# short pauses). The first argument is the heap in MB.
kafka_java() {
  local heap_mb="$1"; shift
  exec java -Xms"${heap_mb}m" -Xmx"${heap_mb}m" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_LOG_CONFIG" -cp "$KAFKA_HOME/libs/*" "$@"
}

# Writes DIR/server.properties for node ID of a cluster of NODES (voters on the controller
# ports), replication defaults matching the cluster's size.
write_node_config() {
  local dir="$1" id="$2" nodes="$3" port="$4" controller_port="$5" voters="" i
  for ((i = 1; i <= nodes; i++)); do
    voters+="${voters:+,}$i@127.0.0.1:$((KAFKA_CONTROLLER_PORT + i - 1))"
  done
  # A standalone node is its own only voter, on the port it was given.
  ((nodes == 1)) && voters="$id@127.0.0.1:$controller_port"
  local replication=$((nodes >= 3 ? 3 : 1)) min_isr=$((nodes >= 3 ? 2 : 1))
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
# Two cores: a few request threads are plenty, more only contend.
num.network.threads=2
num.io.threads=4
# Topics are created by \`consumer ensure-topics\` with their settings, never by a typo.
auto.create.topics.enable=false
default.replication.factor=$replication
min.insync.replicas=$min_isr
unclean.leader.election.enable=false
offsets.topic.replication.factor=$replication
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=$replication
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$replication
share.coordinator.state.topic.min.isr=$min_isr
# Tests and demos start consumers one after another; waiting for more members only delays them.
group.initial.rebalance.delay.ms=0
EOF
}

# Formats DIR's storage once (KRaft needs a cluster id before the first start).
format_node() {
  local dir="$1" cluster_id="$2"
  [[ -f "$dir/data/meta.properties" ]] && return
  (kafka_java 256 -Dkafka.root.level=WARN kafka.tools.StorageTool format \
     -t "$cluster_id" -c "$dir/server.properties") >>"$dir/format.log" 2>&1 \
    || die "formatting $dir failed (see $dir/format.log)"
}

new_cluster_id() {
  (kafka_java 256 -Dkafka.root.level=WARN kafka.tools.StorageTool random-uuid)
}

node_heap_mb() { echo "${KAFKA_HEAP_MB:-$(($1 >= 3 ? 768 : 1024))}"; }

stack_nodes() { cat "$KAFKA_DIR/nodes" 2>/dev/null || echo 1; }

# Starts node ID of the stack in the background (recorded PID kafka-ID), formatting it first.
start_node() {
  local id="$1" nodes="$2" cluster_id="$3"
  local port=$((KAFKA_PORT + id - 1)) controller_port=$((KAFKA_CONTROLLER_PORT + id - 1))
  local dir="$KAFKA_DIR/node-$id"
  if running "kafka-$id"; then log "kafka-$id already running (pid $(cat "$PIDS/kafka-$id.pid"))"; return; fi
  local taken
  for taken in "$port" "$controller_port"; do
    port_open "$taken" && die "port $taken is taken by a process this script did not start"
  done
  write_node_config "$dir" "$id" "$nodes" "$port" "$controller_port"
  format_node "$dir" "$cluster_id"
  start_process "kafka-$id" "$REPO/infra/kafka.sh" exec-node "$dir" "$(node_heap_mb "$nodes")"
}

start_stack() {
  local nodes=1
  while (($#)); do
    case "$1" in
      --nodes) nodes="$2"; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [[ "$nodes" == 1 || "$nodes" == 3 ]] || die "--nodes takes 1 or 3"
  local existing
  existing="$(cat "$KAFKA_DIR/nodes" 2>/dev/null || echo "$nodes")"
  [[ "$existing" == "$nodes" ]] \
    || die "the stack's Kafka has $existing node(s); \`infra/stack.sh reset\` before starting $nodes"
  install_kafka
  mkdir -p "$KAFKA_DIR"
  echo "$nodes" >"$KAFKA_DIR/nodes"
  [[ -f "$KAFKA_DIR/cluster-id" ]] || new_cluster_id >"$KAFKA_DIR/cluster-id"
  local id
  for ((id = 1; id <= nodes; id++)); do start_node "$id" "$nodes" "$(cat "$KAFKA_DIR/cluster-id")"; done
  for ((id = 1; id <= nodes; id++)); do
    wait_for "kafka-$id" 60 port_open $((KAFKA_PORT + id - 1))
  done
  log "Apache Kafka $KAFKA_VERSION: $nodes node(s) at $(kafka_brokers)"
}

# The names Kafka's distribution gives its scripts, mapped to their main classes.
tool_class() {
  case "$1" in
    kafka-topics) echo org.apache.kafka.tools.TopicCommand ;;
    kafka-consumer-groups) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    kafka-producer-perf-test) echo org.apache.kafka.tools.ProducerPerformance ;;
    kafka-consumer-perf-test) echo org.apache.kafka.tools.ConsumerPerformance ;;
    kafka-console-consumer) echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    kafka-console-producer) echo org.apache.kafka.tools.ConsoleProducer ;;
    kafka-get-offsets) echo org.apache.kafka.tools.GetOffsetShell ;;
    kafka-configs) echo kafka.admin.ConfigCommand ;;
    kafka-metadata-quorum) echo org.apache.kafka.tools.MetadataQuorumCommand ;;
    kafka-leader-election) echo org.apache.kafka.tools.LeaderElectionCommand ;;
    kafka-reassign-partitions) echo org.apache.kafka.tools.reassign.ReassignPartitionsCommand ;;
    kafka-storage) echo kafka.tools.StorageTool ;;
    *) die "unknown tool $1 (kafka-topics, kafka-consumer-groups, kafka-producer-perf-test, kafka-consumer-perf-test, kafka-console-consumer, kafka-console-producer, kafka-get-offsets, kafka-configs, kafka-metadata-quorum, kafka-leader-election, kafka-reassign-partitions, kafka-storage)" ;;
  esac
}

case "${1:-}" in
  install) install_kafka ;;
  start) shift; start_stack "$@" ;;
  stop)
    for pidfile in "$PIDS"/kafka-*.pid; do
      # A controlled shutdown hands the node's leaderships over first: give it time.
      if [[ -e "$pidfile" ]]; then stop "$(basename "$pidfile" .pid)" "$KAFKA_STOP_GRACE_SECS"; fi
    done
    ;;
  status)
    for ((id = 1; id <= $(stack_nodes); id++)); do
      if running "kafka-$id"; then echo "kafka-$id: running (pid $(cat "$PIDS/kafka-$id.pid"))"; else echo "kafka-$id: stopped"; fi
    done
    ;;
  brokers) kafka_brokers ;;
  run-node)
    (($# == 4)) || die "usage: $0 run-node DIR PORT CONTROLLER_PORT"
    install_kafka
    dir="$2"; port="$3"; controller_port="$4"
    write_node_config "$dir" 1 1 "$port" "$controller_port"
    [[ -f "$dir/cluster-id" ]] || new_cluster_id >"$dir/cluster-id"
    format_node "$dir" "$(cat "$dir/cluster-id")"
    kafka_java "${KAFKA_HEAP_MB:-512}" kafka.Kafka "$dir/server.properties"
    ;;
  # The stack's nodes run through this, so the recorded PID becomes the JVM's.
  exec-node) kafka_java "$3" kafka.Kafka "$2/server.properties" ;;
  tool)
    (($# >= 2)) || die "usage: $0 tool NAME [ARGS...]"
    install_kafka
    class="$(tool_class "$2")"; shift 2
    kafka_java "${KAFKA_TOOL_HEAP_MB:-256}" -Dkafka.root.level=WARN "$class" "$@"
    ;;
  *) die "usage: $0 install|start [--nodes 1|3]|stop|status|brokers|run-node DIR PORT CONTROLLER_PORT|tool NAME [ARGS...]" ;;
esac
