#!/usr/bin/env bash
# The dependency policy in deny.toml, checked with cargo-deny: licenses (an allow-list of
# what the tree uses), bans (no wildcard versions; duplicate versions are warnings) and
# sources (crates.io only) fail the run on any violation.
#
# Advisories need the RustSec database, a git repository on GitHub. The fetch is tried
# once, bounded to 60 s; when it fails, a copy already under $CARGO_HOME/advisory-dbs (from
# an earlier fetch, or cloned there by other means) is used as it is, and without one the
# advisories check prints SKIPPED and why instead of failing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CARGO_DENY_VERSION="0.20.2"
install_cargo_tool cargo-deny "$CARGO_DENY_VERSION"
export PATH="$CARGO_TOOLS_ROOT/bin:$PATH"
cd "$REPO"

log "cargo deny: licenses, bans, sources"
cargo deny --locked check licenses bans sources

advisory_dbs="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
fetch_log="$(mktemp)"
trap 'rm -f "$fetch_log"' EXIT
if timeout 60 cargo deny --locked fetch db >"$fetch_log" 2>&1; then
  log "cargo deny: advisories (database fetched)"
  cargo deny --locked --offline check advisories
elif compgen -G "$advisory_dbs/advisory-db-*/.git" >/dev/null; then
  copy="$(compgen -G "$advisory_dbs/advisory-db-*" | head -1)"
  log "cargo deny: advisories against the copy in $copy, last updated $(git -C "$copy" log -1 --format=%cs), since the fetch failed"
  cargo deny --locked --offline check advisories
else
  reason="$(grep -m1 'fatal:' "$fetch_log" | sed 's/^.*fatal: *//' || true)"
  [[ -n "$reason" ]] || reason="$(tail -1 "$fetch_log")"
  printf '[deny] advisories SKIPPED: the RustSec advisory database (a git repository on GitHub) could not be fetched (%s); licenses, bans and sources were checked\n' \
    "$reason" >&2
fi
