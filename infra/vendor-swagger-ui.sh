#!/usr/bin/env bash
# Vendors the API reference page's renderer: Swagger UI's standalone bundle and stylesheet
# from the npm registry (swagger-ui-dist, pinned by version and by the registry's sha512
# integrity), with its licence, into ingress/assets/swagger-ui/, which the ingress compiles
# in and serves at /docs. Nothing is fetched at run time.
#
#   infra/vendor-swagger-ui.sh          # fetch, verify and write the files
#   infra/vendor-swagger-ui.sh --check  # fetch, verify, and fail unless the committed files match
#
# To move to another release, change VERSION and INTEGRITY (the `dist.integrity` of
# https://registry.npmjs.org/swagger-ui-dist/<version>) and run it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

VERSION=5.35.0
INTEGRITY="sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ=="
FILES=(swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE)
DEST="$REPO/ingress/assets/swagger-ui"

check=0
[[ "${1:-}" == --check ]] && check=1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
url="https://registry.npmjs.org/swagger-ui-dist/-/swagger-ui-dist-$VERSION.tgz"
log "fetching swagger-ui-dist $VERSION from the npm registry"
curl -fsS --retry 3 -m 120 -o "$work/package.tgz" "$url"
actual="sha512-$(openssl dgst -sha512 -binary "$work/package.tgz" | base64 -w0)"
[[ "$actual" == "$INTEGRITY" ]] || die "swagger-ui-dist $VERSION: integrity $actual, expected $INTEGRITY"
tar -xzf "$work/package.tgz" -C "$work"
if ((check)); then
  for file in "${FILES[@]}"; do
    cmp -s "$work/package/$file" "$DEST/$file" || die "$DEST/$file differs from swagger-ui-dist $VERSION: run infra/vendor-swagger-ui.sh"
  done
  [[ "$(cat "$DEST/VERSION")" == "$VERSION" ]] || die "$DEST/VERSION is not $VERSION"
  log "ingress/assets/swagger-ui is swagger-ui-dist $VERSION"
  exit 0
fi
mkdir -p "$DEST"
for file in "${FILES[@]}"; do cp "$work/package/$file" "$DEST/$file"; done
printf '%s\n' "$VERSION" >"$DEST/VERSION"
log "wrote ${FILES[*]} of swagger-ui-dist $VERSION to $DEST"
