#!/usr/bin/env bash
# The whole test suite. The integration tests talk to the real Apache Kafka, Redis (a single
# node, and a three-master Redis Cluster for the projection and idempotency tests) and the
# CQL store (Apache Cassandra standing in for ScyllaDB), so this brings the local stack up
# first (installing what is missing), then checks formatting and
# lints and the dependency policy, runs every test in release mode (sharing the build with
# the demo; the API reference page's in headless chromium, installed here), the fuzz targets for a bounded time, a k6 smoke run and schemathesis against the
# live ingress, and validates the deployment artefacts under infra/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$REPO/infra/stack.sh" up --cassandra --redis-cluster
# The browser the API reference page's test drives (ingress/tests/docs_page.rs).
install_chromium
# The CQL store's conformance suite and process faults run live against it (never skipped).
export SCYLLA_URI="127.0.0.1:$CASSANDRA_PORT"
cd "$REPO"
log "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
log "cargo clippy -D warnings"
cargo clippy --quiet --release --workspace --all-targets -- -D warnings
# Licenses, bans and sources from deny.toml; advisories when the database can be fetched.
log "cargo deny"
"$REPO/infra/deny.sh"
log "cargo test"
cargo test --release --workspace
# The projection, idempotency, feed and webhook integration tests again, on the
# three-master Redis Cluster instead of the single Redis: a command spanning two hash
# slots fails there.
log "cargo test on the Redis Cluster ($(redis_cluster_urls))"
# The whole workspace's feature set, so nothing is built again for this run.
REDIS_URL="$(redis_cluster_urls)" cargo test --release --workspace \
  --test pipeline --test projection_writes --test dedup --test reads --test feed --test webhooks
# Each parser of untrusted bytes (event decoder, request validation, signature headers)
# under libFuzzer for 20 s, failing on a crash or a broken property.
log "fuzz"
"$REPO/infra/fuzz.sh" --seconds 20
# A short k6 run of the whole partner mix against the real ingress and consumer, held to
# the publish SLO (exits non-zero when a threshold is crossed).
log "k6 smoke"
"$REPO/infra/k6.sh" smoke
# Generated requests against the live ingress, every answer checked against the OpenAPI spec.
log "schemathesis"
"$REPO/infra/schemathesis.sh"
# Faults under load (kill -9 of a consumer and of the ingress, a broker restart, a Redis
# restart), each judged against the store: nothing acknowledged lost or doubled.
log "fault scenarios (short)"
"$REPO/infra/faults.sh" --short
# A Redis Cluster master and its replica killed under load: reads of the lost slots answer
# 503 and the others 200, nothing is lost, and the projections reconcile with the store.
log "fault scenario on the Redis Cluster"
"$REPO/infra/faults.sh" --redis-cluster redis-slots-lost
# The deployment artefacts (Prometheus rules and their unit tests, dashboard metric names,
# compose, Kubernetes and KEDA manifests, the configuration reference) after the build,
# since the last check reads the release binaries' --help.
log "ops checks"
"$REPO/infra/check-ops.sh"
