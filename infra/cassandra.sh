#!/usr/bin/env bash
# Apache Cassandra 5.0 (one node) on loopback, from the jars Maven Central serves: the pinned
# version in infra/cassandra/pom.xml is resolved once, with cqlsh from PyPI, into a cache
# outside the repository, so the consumers' ScyllaDB backend can be run against Cassandra.
#
#   infra/cassandra.sh install        resolve the jars and cqlsh into the cache (skipped when there)
#   infra/cassandra.sh start          start the node, wait for CQL, apply infra/scylla/schema.cql
#   infra/cassandra.sh stop | status
#   infra/cassandra.sh cqlsh [ARGS]   cqlsh connected to the node, e.g. cqlsh -e 'describe keyspaces'
#
# CQL listens on CASSANDRA_PORT (9042), the storage (gossip) port on CASSANDRA_STORAGE_PORT
# (17000, away from Kafka's 9092-9194), JMX on 127.0.0.1:CASSANDRA_JMX_PORT only when that is
# set. Heap: CASSANDRA_HEAP_MB (1024; starts at half of it), so three Kafka nodes, Redis, a
# release build and the tests fit in 24 GiB beside it. The schema gets
# CASSANDRA_REPLICATION_FACTOR replicas (1). Data lives in $STATE_DIR/cassandra.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CASSANDRA_POM="$REPO/infra/cassandra/pom.xml"
CASSANDRA_VERSION="$(sed -n 's:.*<cassandra.version>\(.*\)</cassandra.version>.*:\1:p' "$CASSANDRA_POM")"
CASSANDRA_HOME="${BOOKING_CASSANDRA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/booking-pipeline/cassandra-$CASSANDRA_VERSION}"
CASSANDRA_DIR="$STATE_DIR/cassandra"
CASSANDRA_PORT="${CASSANDRA_PORT:-9042}"
CASSANDRA_STORAGE_PORT="${CASSANDRA_STORAGE_PORT:-17000}"
CASSANDRA_JMX_PORT="${CASSANDRA_JMX_PORT:-}"
CASSANDRA_HEAP_MB="${CASSANDRA_HEAP_MB:-1024}"
CASSANDRA_REPLICATION_FACTOR="${CASSANDRA_REPLICATION_FACTOR:-1}"
# cqlsh is Python and not part of cassandra-all; PyPI's package is the one Cassandra 5.0 ships.
CQLSH_PACKAGES=(cqlsh==6.2.2 cassandra-driver==3.30.1)

# The cache is complete only when its marker (written last) holds the digest of what it was
# resolved from, so an interrupted install or an edited pom resolves again.
install_cassandra() {
  local digest
  digest="$({ cat "$CASSANDRA_POM"; printf '%s\n' "${CQLSH_PACKAGES[@]}"; } | sha256sum | cut -d' ' -f1)"
  [[ "$(cat "$CASSANDRA_HOME/.installed" 2>/dev/null)" == "$digest" ]] && return
  command -v mvn >/dev/null || die "Maven (mvn) is needed to obtain Apache Cassandra"
  rm -rf "${CASSANDRA_HOME:?}/lib" "$CASSANDRA_HOME/cqlsh" "$CASSANDRA_HOME/.installed"
  mkdir -p "$CASSANDRA_HOME"
  step "resolving Apache Cassandra $CASSANDRA_VERSION from Maven Central into $CASSANDRA_HOME" \
    mvn -B -q -f "$CASSANDRA_POM" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$CASSANDRA_HOME/lib" \
    || die "could not resolve Apache Cassandra (its output above)"
  jamm_jar >/dev/null
  python3 -m venv "$CASSANDRA_HOME/cqlsh"
  step "installing ${CQLSH_PACKAGES[*]} into $CASSANDRA_HOME/cqlsh (PyPI)" \
    "$CASSANDRA_HOME/cqlsh/bin/pip" install -q "${CQLSH_PACKAGES[@]}"
  echo "$digest" >"$CASSANDRA_HOME/.installed"
}

# Cassandra measures object sizes with the jamm agent and will not start without it.
jamm_jar() {
  local jars=("$CASSANDRA_HOME"/lib/jamm-*.jar)
  [[ -f "${jars[0]}" ]] || die "no jamm agent in $CASSANDRA_HOME/lib"
  echo "${jars[0]}"
}

cqlsh() { "$CASSANDRA_HOME/cqlsh/bin/cqlsh" --no-color 127.0.0.1 "$CASSANDRA_PORT" "$@"; }

# For the script's own statements. cqlsh 6.2 is Cassandra 5.0.0's and tells every later 5.0.x
# server so on standard output: noise here, as the protocol and CQL are the same.
cql() { cqlsh "$@" | { grep -v '^WARNING: cqlsh was built against' || true; }; }

# Writes the node's cassandra.yaml from the template, with this run's directories and ports.
write_config() {
  mkdir -p "$CASSANDRA_DIR"/{conf,data,commitlog,saved_caches,hints,cdc_raw,triggers}
  sed -e "s|@DIR@|$CASSANDRA_DIR|g" -e "s|@STORAGE_PORT@|$CASSANDRA_STORAGE_PORT|g" \
    -e "s|@NATIVE_PORT@|$CASSANDRA_PORT|g" "$REPO/infra/cassandra/cassandra.yaml" \
    >"$CASSANDRA_DIR/conf/cassandra.yaml"
}

# The JVM flags Cassandra's own start scripts pass on Java 17 (conf/jvm-server.options,
# conf/jvm17-server.options, cassandra-env.sh), less the ones meant for big production heaps
# (AlwaysPreTouch would make the whole heap resident at once).
jvm_flags() {
  local heap="$CASSANDRA_HEAP_MB" jamm module
  jamm="$(jamm_jar)"
  JVM=(-Xms$((heap / 2))m -Xmx"${heap}m" -Xss256k
    -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 -XX:MaxGCPauseMillis=300
    -XX:+UseThreadPriorities -XX:+PerfDisableSharedMem -XX:+ExitOnOutOfMemoryError
    -ea -da:net.openhft... -Djava.net.preferIPv4Stack=true
    -javaagent:"$jamm" -Djdk.attach.allowAttachSelf=true
    -Dio.netty.tryReflectionSetAccessible=true
    -Dio.netty.allocator.useCacheForAllThreads=true -Dio.netty.allocator.maxOrder=11)
  # Cassandra reaches into JDK internals (Unsafe, direct buffers, the attach API, javac for
  # UDFs); Java 17 allows that only to what is exported or opened explicitly.
  for module in java.base/jdk.internal.misc java.base/java.lang.ref jdk.unsupported/sun.misc \
      java.management.rmi/com.sun.jmx.remote.internal.rmi java.rmi/sun.rmi.registry \
      java.rmi/sun.rmi.server java.sql/java.sql jdk.compiler/com.sun.tools.javac.file \
      jdk.attach/sun.tools.attach; do
    JVM+=(--add-exports "$module=ALL-UNNAMED")
  done
  for module in java.base/java.lang java.base/java.lang.module java.base/java.lang.reflect \
      java.base/java.io java.base/java.util java.base/sun.nio.ch java.base/jdk.internal.loader \
      java.base/jdk.internal.ref java.base/jdk.internal.reflect java.base/jdk.internal.math \
      java.base/jdk.internal.module java.base/jdk.internal.util.jar \
      jdk.management/com.sun.management.internal jdk.compiler/com.sun.tools.javac; do
    JVM+=(--add-opens "$module=ALL-UNNAMED")
  done
  [[ -n "$CASSANDRA_JMX_PORT" ]] && JVM+=(-Dcassandra.jmx.local.port="$CASSANDRA_JMX_PORT")
  # A single node that is its own seed has no gossip to wait for.
  JVM+=(-Dcassandra-foreground=yes -Dcassandra.skip_wait_for_gossip_to_settle=0
    -Dcassandra.config="file://$CASSANDRA_DIR/conf/cassandra.yaml"
    -Dcassandra.storagedir="$CASSANDRA_DIR" -Dcassandra.triggers_dir="$CASSANDRA_DIR/triggers"
    -Dcassandra.logdir="$LOGS"
    -Dlogback.configurationFile="$REPO/infra/cassandra/logback.xml"
    -cp "$CASSANDRA_HOME/lib/*" org.apache.cassandra.service.CassandraDaemon)
}

# Up when the native transport accepts connections, which Cassandra opens last; a JVM that
# exited meanwhile fails the wait at once instead of after the timeout.
cql_ready() {
  running cassandra || die "Cassandra exited during startup (log: $LOGS/cassandra.log)"
  port_open "$CASSANDRA_PORT"
}

# Applies infra/scylla/schema.cql, adapted: Cassandra rejects ScyllaDB's `tablets` keyspace
# option (the Rust backend leaves it out the same way on servers without tablets), and one
# node holds one replica.
apply_schema() {
  local schema="$CASSANDRA_DIR/conf/schema.cql"
  sed -e "s/[[:space:]]*AND tablets = {'enabled': false}//" \
    -e "s/'replication_factor': 3/'replication_factor': $CASSANDRA_REPLICATION_FACTOR/" \
    "$REPO/infra/scylla/schema.cql" >"$schema"
  grep -q "tablets =" "$schema" && die "schema.cql's tablets option changed; update $0"
  cql -f "$schema"
  log "applied infra/scylla/schema.cql (keyspace booking_store, replication factor $CASSANDRA_REPLICATION_FACTOR)"
}

release_version() {
  cql -e "SELECT release_version FROM system.local" | sed -En 's/^ *([0-9]+\.[0-9]+\.[0-9]+) *$/\1/p'
}

start_cassandra() {
  install_cassandra
  local started=$SECONDS
  if ! running cassandra; then
    local port
    for port in "$CASSANDRA_PORT" "$CASSANDRA_STORAGE_PORT" $CASSANDRA_JMX_PORT; do
      port_open "$port" && die "port $port is taken by a process this script did not start"
    done
    write_config
    jvm_flags
    # Cassandra's own scripts cap glibc's malloc arenas: many threads, each with an arena,
    # otherwise grow the resident size for no gain.
    start_process cassandra env MALLOC_ARENA_MAX=4 java "${JVM[@]}"
  else
    log "cassandra already running (pid $(cat "$PIDS/cassandra.pid"))"
  fi
  wait_for cassandra 120 cql_ready
  log "CQL answers on 127.0.0.1:$CASSANDRA_PORT after $((SECONDS - started)) s"
  apply_schema
  log "Apache Cassandra $(release_version) ready (pid $(cat "$PIDS/cassandra.pid"))"
}

status_cassandra() {
  if running cassandra; then
    local pid rss
    pid="$(cat "$PIDS/cassandra.pid")"
    rss="$(awk '/^VmRSS:/ {printf "%d MiB", $2 / 1024}' "/proc/$pid/status")"
    echo "cassandra: running (pid $pid, RSS $rss), CQL on 127.0.0.1:$CASSANDRA_PORT"
  else
    echo "cassandra: stopped"
  fi
}

case "${1:-}" in
  install) install_cassandra ;;
  start) start_cassandra ;;
  stop) stop cassandra ;;
  status) status_cassandra ;;
  cqlsh) shift; install_cassandra; cqlsh "$@" ;;
  *) die "usage: $0 install|start|stop|status|cqlsh [ARGS...]" ;;
esac
