#!/usr/bin/env bash
# Regenerates the configuration reference in docs/OPERATIONS.md (between the
# `config-reference:start` and `config-reference:end` markers) from the binaries' --help.
#
#   infra/config-reference.sh            # rewrite the section
#   infra/config-reference.sh --check    # exit 1 if the section differs from --help
#
# The binaries come from BIN_DIR (default: this checkout's target/release; build them with
# `cargo build --release -p ingress -p consumers`). Before writing, every environment
# variable in the --help output is compared with the `env = "..."` settings of
# ingress/src/config.rs and consumers/src/config.rs, so a binary built from other source
# is refused rather than documented; a subcommand the binary has but this checkout's
# consumers/src/config.rs does not declare is left out, with a warning.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="${BIN_DIR:-$REPO/target/release}"
DOC="$REPO/docs/OPERATIONS.md"
mode="${1:-write}"

for bin in ingress consumer; do
  [[ -x "$BIN_DIR/$bin" ]] || { echo "config-reference: $BIN_DIR/$bin not found; build it first" >&2; exit 2; }
done

generated="$(mktemp)"
trap 'rm -f "$generated"' EXIT

python3 - "$BIN_DIR" "$REPO" >"$generated" <<'PY'
import re, subprocess, sys
from pathlib import Path

bin_dir, repo = Path(sys.argv[1]), Path(sys.argv[2])

def help_text(*args):
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout

def options(text):
    """(flag, env, default, description) for each option of a clap --help page."""
    rows, current = [], None
    in_options = False
    usage = next((l for l in text.splitlines() if l.startswith("Usage:")), "")
    for line in text.splitlines():
        if line.strip() == "Options:":
            in_options = True
            continue
        if not in_options:
            continue
        m = re.match(r"^\s{2,6}(?:-\w, )?(--[\w-]+)( <\w+>)?\s*$", line)
        if m:
            current = [m.group(1), "", bool(m.group(2))]
            rows.append(current)
        elif current is not None and line.startswith(" " * 10):
            current[1] += (" " if current[1] else "") + line.strip()
    out = []
    for flag, text, takes_value in rows:
        if flag in ("--help", "--version"):
            continue
        env = re.search(r"\[env: (\w+)=[^\]]*\]", text)
        default = re.search(r'\[default: ([^\]]*)\]', text)
        values = re.search(r"\[possible values: ([^\]]*)\]", text)
        desc = re.sub(r"\s*\[(env|default|possible values): [^\]]*\]", "", text).strip()
        if desc and desc[-1] not in ".:;!?":
            desc += "."
        if values:
            desc += f" One of: {values.group(1)}."
        if default:
            shown = default.group(1)
        elif re.search(rf"{flag}\b", usage):
            shown = "(required)"
        else:
            shown = "(unset)" if takes_value else "(off)"
        out.append((flag, env.group(1) if env else "", shown, desc))
    return out

def commands(text):
    cmds, in_cmds = [], False
    for line in text.splitlines():
        if line.strip() == "Commands:":
            in_cmds = True
            continue
        if in_cmds:
            m = re.match(r"^\s{2}([\w-]+)\s+(.*)$", line)
            if not m:
                break
            if m.group(1) != "help":
                cmds.append((m.group(1), m.group(2).strip()))
    return cmds

def source_envs(path):
    return set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', (repo / path).read_text()))

def source_commands(path):
    body = re.search(r"pub enum Command \{(.*?)\n\}", (repo / path).read_text(), re.S).group(1)
    names = re.findall(r"^\s{4}(\w+)[,(]", body, re.M)
    return {re.sub(r"(?<!^)([A-Z])", r"-\1", n).lower() for n in names}

def table(rows):
    lines = ["| variable | flag | default | meaning |", "|---|---|---|---|"]
    for flag, env, default, desc in rows:
        if default == '""':
            default = "empty"
        elif not default.startswith("("):
            default = f"`{default}`"
        variable = f"`{env}`" if env else "(flag only)"
        lines.append(f"| {variable} | `{flag}` | {default} | {desc.replace('|', '/')} |")
    return "\n".join(lines)

ingress = help_text(str(bin_dir / "ingress"), "--help")
consumer = help_text(str(bin_dir / "consumer"), "--help")
ingress_rows = options(ingress)
consumer_rows = options(consumer)
declared = set(source_commands("consumers/src/config.rs"))
subcommands = []
for name, about in commands(consumer):
    if name not in declared:
        print(f"config-reference: warning: the consumer binary has a `{name}` subcommand that "
              "consumers/src/config.rs does not declare; left out", file=sys.stderr)
        continue
    subcommands.append((name, about, options(help_text(str(bin_dir / "consumer"), name, "--help"))))

seen = {env for _, env, _, _ in ingress_rows} | {env for _, env, _, _ in consumer_rows}
seen |= {env for _, _, rows in subcommands for _, env, _, _ in rows}
seen.discard("")  # options given only on the command line
expected = source_envs("ingress/src/config.rs") | source_envs("consumers/src/config.rs")
if seen != expected:
    sys.exit(f"config-reference: the binaries in {bin_dir} do not match this checkout's config.rs "
             f"(only in --help: {sorted(seen - expected)}, only in source: {sorted(expected - seen)}); rebuild them")

print("<!-- config-reference:start (generated by infra/config-reference.sh from --help; do not edit) -->")
print()
print("### `ingress`")
print()
print(table(ingress_rows))
print()
print("### `consumer`")
print()
print("Subcommands: " + "; ".join(f"`consumer {n}`: {a.rstrip('.')}" for n, a, _ in subcommands) + ".")
print("The options below apply to every subcommand.")
print()
print(table(consumer_rows))
for name, about, rows in subcommands:
    if rows:
        print()
        print(f"Options of `consumer {name}` only:")
        print()
        print(table(rows))
print()
print("<!-- config-reference:end -->")
PY

section() { sed -n '/<!-- config-reference:start/,/<!-- config-reference:end -->/p' "$1"; }

if [[ "$mode" == "--check" ]]; then
  if diff -u <(section "$DOC") "$generated"; then
    echo "config-reference: docs/OPERATIONS.md matches --help"
  else
    echo "config-reference: docs/OPERATIONS.md is stale; run infra/config-reference.sh" >&2
    exit 1
  fi
  exit 0
fi

grep -q '<!-- config-reference:start' "$DOC" || { echo "config-reference: no markers in $DOC" >&2; exit 2; }
python3 - "$DOC" "$generated" <<'PY'
import re, sys
doc, generated = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
text = open(doc).read()
text = re.sub(r"<!-- config-reference:start.*?<!-- config-reference:end -->", lambda _: generated, text, flags=re.S)
open(doc, "w").write(text)
PY
echo "config-reference: rewrote the section in docs/OPERATIONS.md"
