#!/usr/bin/env bash
# The whole test suite. The integration tests talk to the real broker and Redis, so this
# brings the local stack up first (installing what is missing), then checks formatting and
# lints, runs every test in release mode (sharing the build with the demo), a k6 smoke run
# and schemathesis against the live ingress, and validates the deployment artefacts under infra/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$REPO/infra/stack.sh" up
cd "$REPO"
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy -D warnings"
cargo clippy --quiet --release --workspace --all-targets -- -D warnings
log "cargo test"
cargo test --release --workspace
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
# The deployment artefacts (Prometheus rules and their unit tests, dashboard metric names,
# compose, Kubernetes and KEDA manifests, the configuration reference) after the build,
# since the last check reads the release binaries' --help.
log "ops checks"
"$REPO/infra/check-ops.sh"
