#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/ for a bounded time and fails on any crash or
# broken property (each target asserts one; see the doc comment at the top of each).
#
#   infra/fuzz.sh                 # 20 s per target, what the test suite runs
#   infra/fuzz.sh --seconds 300   # longer, by hand
#
# cargo-fuzz passes rustc flags that only nightly accepts (-Zsanitizer=address, sancov
# options). RUSTC_BOOTSTRAP=1 lets the pinned stable toolchain take them, so no nightly
# toolchain has to be fetched. Each target starts from its committed seeds
# (fuzz/seeds/TARGET) and keeps what it finds in a corpus under the state directory, so
# repeated runs on one machine build on each other; a crash is saved under
# fuzz/artifacts/TARGET and the command to replay it is printed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CARGO_FUZZ_VERSION="0.13.2"
seconds=20
while (($#)); do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a number}"; shift 2 ;;
    *) die "usage: infra/fuzz.sh [--seconds N]" ;;
  esac
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "--seconds needs a positive whole number, not $seconds"

install_cargo_tool cargo-fuzz "$CARGO_FUZZ_VERSION"
export PATH="$CARGO_TOOLS_ROOT/bin:$PATH"
export RUSTC_BOOTSTRAP=1
cd "$REPO"

started=$SECONDS
log "fuzz: building every target (cargo fuzz build, address sanitizer)"
cargo fuzz build --fuzz-dir fuzz
log "fuzz: build took $((SECONDS - started)) s"

failed=()
mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
for target in "${targets[@]}"; do
  corpus="$STATE_DIR/fuzz/corpus/$target"
  output="$STATE_DIR/fuzz/$target.log"
  mkdir -p "$corpus"
  log "fuzz: $target for $seconds s (corpus $corpus)"
  # The first corpus directory receives new inputs; the seeds are read only.
  if cargo fuzz run --fuzz-dir fuzz "$target" "$corpus" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -timeout=10 >"$output" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs' "$output" | sed "s/^/[fuzz] $target: /" >&2
  else
    failed+=("$target")
    # The failed assertion, or the sanitizer's report; else whatever libFuzzer said last.
    { grep -A4 'panicked at' "$output" || grep -A15 'ERROR: AddressSanitizer' "$output" ||
      tail -30 "$output"; } | head -30 >&2
    artifact="$(grep -oE 'fuzz/artifacts/[^ ]+' "$output" | tail -1 || true)"
    log "fuzz: $target FAILED (full output $output)"
    [[ -n "$artifact" ]] && log "fuzz: replay with RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz $target $artifact"
  fi
done
log "fuzz: ${#targets[@]} targets, $((SECONDS - started)) s in all"
((${#failed[@]} == 0)) || die "fuzz targets failed: ${failed[*]}"
