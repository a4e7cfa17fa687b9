#!/usr/bin/env python3
"""Checks that the Grafana dashboards and Prometheus rules reference only metrics the
binaries emit.

Every metric name referenced by a PromQL expression in infra/prometheus/rules/*.yml and
infra/grafana/dashboards/*.json is extracted and compared with:

  * without --scrape: the names declared in ingress/src/metrics.rs and
    consumers/src/metrics.rs (histograms expand to _bucket, _sum and _count);
  * with --scrape URL (repeatable): the names found in those live /metrics pages. A name
    that the source declares but the scrape lacks is reported as "not recorded yet" and
    only fails with --strict: the Prometheus exporter shows a metric after its first
    recording, so error counters are absent from a healthy process.

Names produced by recording rules in the rule files, and `up` (which Prometheus records
per target), are always allowed. Exits 1 on any unknown name, 2 on a usage error.
Standard library only: it runs in CI before anything is installed.
"""

import argparse
import json
import re
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
METRICS_FILES = [REPO / "ingress/src/metrics.rs", REPO / "consumers/src/metrics.rs"]
RULE_GLOB = (REPO / "infra/prometheus/rules", "*.yml")
DASHBOARD_GLOB = (REPO / "infra/grafana/dashboards", "*.json")
PROMETHEUS_BUILTINS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

PROMQL_WORDS = {
    # Aggregations, operators and modifiers: identifiers that are not metric names.
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk",
    "quantile", "count_values", "group", "by", "without", "on", "ignoring",
    "group_left", "group_right", "and", "or", "unless", "bool", "offset", "atan2",
    "inf", "nan", "Inf", "NaN",
}


def declared_metrics():
    """Names declared in the metrics.rs files, with histogram series suffixes."""
    names = set()
    for path in METRICS_FILES:
        source = path.read_text()
        consts = dict(re.findall(r'const\s+(\w+)\s*:\s*&str\s*=\s*"([a-z_:][a-z0-9_:]*)"', source))
        if not consts:
            sys.exit(f"no metric names found in {path}")
        kinds = dict(
            (const, kind)
            for kind, const in re.findall(r"describe_(counter|gauge|histogram)!\(\s*(\w+)", source)
        )
        for const, name in consts.items():
            if const not in kinds:
                sys.exit(f"{path}: {const} ({name}) is never described, its type is unknown")
            if kinds[const] == "histogram":
                names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
            else:
                names.add(name)
    return names


def scraped_metrics(url):
    """Sample names on a Prometheus text exposition page, and (name, le) of its buckets."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    names, buckets = set(), set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            match = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
            if match:
                names.add(match.group(0))
            bucket = re.match(r'(\w+_bucket)\{[^}]*\ble="([^"]+)"', line)
            if bucket:
                buckets.add(bucket.groups())
    return names, buckets


def bucket_references(expr):
    """(histogram_bucket, le) pairs an expression selects by an exact `le` matcher."""
    return set(re.findall(r'(\w+_bucket)\{[^}]*\ble="([^"]+)"', expr))


def metric_names(expr):
    """Metric names in a PromQL expression (Grafana variables allowed)."""
    # label_values(metric, label) in Grafana variable queries names a metric too.
    expr = re.sub(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,[^)]*\)", r"\1", expr)
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # strings
    expr = re.sub(r"'(?:\\.|[^'\\])*'", "''", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)  # Grafana variables ($__rate_interval)
    expr = re.sub(r"\b\d+(\.\d+)?([eE][-+]?\d+)?[smhdwy]?\b", " ", expr)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        name = match.group(0)
        following = expr[match.end():].lstrip()
        if following.startswith("("):
            continue  # a function or aggregation call
        if name in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def load_yaml(path):
    try:
        import yaml  # PyYAML, when present, parses any YAML
    except ImportError:
        yaml = None
    if yaml is not None:
        return yaml.safe_load(path.read_text())
    # Fallback for a bare Python: the rule files keep `expr:` and `record:` on one line
    # or as a `|` block, which this reads.
    groups, current = [], None
    lines = path.read_text().splitlines()
    i = 0
    rules = []
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\s*-?\s*(expr|record):\s*(.*)$", line)
        if m:
            key, value = m.group(1), m.group(2).strip()
            if value in ("|", ">", "|-", ">-"):
                indent = len(line) - len(line.lstrip()) + 2
                block = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) >= indent):
                    block.append(lines[i].strip())
                    i += 1
                value = " ".join(block)
                rules.append({key: value})
                continue
            rules.append({key: value.strip("'\"")})
        i += 1
    groups.append({"name": path.name, "rules": rules})
    return {"groups": groups}


def rule_references(paths):
    """(expression references, recorded names) across the rule files."""
    refs, recorded = [], set()
    for path in paths:
        for group in load_yaml(path).get("groups", []):
            for rule in group.get("rules", []):
                if "record" in rule:
                    recorded.add(rule["record"])
                if "expr" in rule:
                    label = rule.get("alert") or rule.get("record") or "expr"
                    refs.append((f"{path.relative_to(REPO)}: {label}", str(rule["expr"])))
    return refs, recorded


def dashboard_references(paths):
    refs = []

    def walk(node, where):
        """`where` names the file and the innermost panel or variable seen so far."""
        if isinstance(node, dict):
            if node.get("type") in ("datasource", "custom", "constant", "interval", "textbox"):
                return  # template variables whose `query` is not PromQL
            label = node.get("title") or node.get("name")
            here = f"{where[0]}: {label}" if label else where[1]
            for key, value in node.items():
                if key in ("expr", "query") and isinstance(value, str):
                    refs.append((here, value))
                elif key == "query" and isinstance(value, dict) and "query" in value:
                    refs.append((here, value["query"]))
                else:
                    walk(value, (where[0], here))
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    for path in paths:
        name = str(path.relative_to(REPO))
        walk(json.loads(path.read_text()), (name, name))
    return refs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scrape", action="append", default=[], metavar="URL",
                        help="a live /metrics URL, e.g. http://127.0.0.1:9080/metrics (repeatable)")
    parser.add_argument("--strict", action="store_true",
                        help="with --scrape, also fail on names declared but not recorded yet")
    parser.add_argument("--quiet", action="store_true",
                        help="print failures and the verdict line only")
    args = parser.parse_args()

    declared = declared_metrics()
    rule_files = sorted(RULE_GLOB[0].glob(RULE_GLOB[1]))
    dashboards = sorted(DASHBOARD_GLOB[0].glob(DASHBOARD_GLOB[1]))
    if not rule_files or not dashboards:
        print("no rule files or dashboards found", file=sys.stderr)
        return 2
    refs, recorded = rule_references(rule_files)
    refs += dashboard_references(dashboards)

    if args.scrape:
        available, buckets = set(), set()
        for url in args.scrape:
            try:
                page, page_buckets = scraped_metrics(url)
            except OSError as error:
                print(f"cannot scrape {url}: {error}", file=sys.stderr)
                return 2
            if not args.quiet:
                print(f"scraped {len(page)} series names from {url}")
            available |= page
            buckets |= page_buckets
        drift = sorted(n for n in available if n.startswith(("ingress_", "consumer_")) and n not in declared)
        for name in drift:
            print(f"note: {name} is served but not declared in a metrics.rs file")
        source = "the scrape"
    else:
        available = declared
        source = "metrics.rs"

    allowed = available | recorded | PROMETHEUS_BUILTINS
    checked, failures, unrecorded = set(), 0, set()
    for where, expr in refs:
        for name in sorted(metric_names(expr)):
            checked.add(name)
            if name in allowed:
                continue
            if args.scrape and name in declared:
                unrecorded.add(name)
                if args.strict:
                    print(f"FAIL {where}: {name} is declared but absent from the scrape")
                    failures += 1
                continue
            print(f"FAIL {where}: {name} is not emitted by the binaries")
            failures += 1
    if args.scrape:
        # An SLO on `le="0.06"` silently matches nothing if the exporter spells the bucket
        # bound differently, so exact bucket matchers are checked against the scrape too.
        scraped_histograms = {name for name, _ in buckets}
        for where, expr in refs:
            for name, le in sorted(bucket_references(expr)):
                if name in scraped_histograms and (name, le) not in buckets:
                    print(f"FAIL {where}: {name} has no bucket le=\"{le}\" in the scrape")
                    failures += 1
    if not args.quiet:
        for name in sorted(unrecorded):
            print(f"warning: {name} is declared in metrics.rs but not recorded yet by the scraped process")
    not_yet = f" ({len(unrecorded)} declared but not recorded yet)" if unrecorded else ""
    print(f"dashboard and alert rules: {len(refs)} expressions, {len(checked)} distinct names "
          f"checked against {source}: {'OK' if not failures else f'{failures} failure(s)'}{not_yet}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
