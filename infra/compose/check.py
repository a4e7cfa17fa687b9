#!/usr/bin/env python3
"""Checks the compose stack beyond what `docker compose config` validates.

Usage: check.py RESOLVED.json, where RESOLVED.json is the output of
`docker compose -f infra/compose/docker-compose.yml config --format json` (the Compose
client has already checked the file against the Compose specification). This adds:

  * every variable set on the ingress, consumer and topic-init services is a setting the
    binaries read (ingress/src/config.rs, consumers/src/config.rs): a typo would be
    silently ignored by the binary;
  * the ingress and consumer listen on all interfaces, not their loopback defaults;
  * the bookings topic gets 12 partitions, and the consumers share one store volume;
  * published ports are bound to 127.0.0.1 (the stack carries demo secrets);
  * each Dockerfile used is multi-stage, builds with `cargo build --release`, runs on a
    Debian slim image and switches to a non-root user.
Standard library only. Exits 1 on any failure.
"""

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
OUR_SERVICES = {"ingress", "consumer", "topic-init"}
SETTINGS = set()
for source in ("ingress/src/config.rs", "consumers/src/config.rs"):
    SETTINGS |= set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', (REPO / source).read_text()))


def check_dockerfile(path, errors):
    text = path.read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    if len(stages) < 2:
        errors.append(f"{path.name}: not multi-stage")
    if not stages or "slim" not in stages[-1]:
        errors.append(f"{path.name}: runtime image should be Debian slim, is {stages[-1:]}")
    if "cargo build --release" not in text:
        errors.append(f"{path.name}: no cargo build --release")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    if not users or users[-1].split(":")[0] in ("root", "0"):
        errors.append(f"{path.name}: the final image must run as a non-root USER")


def main():
    config = json.loads(Path(sys.argv[1]).read_text())
    services = config["services"]
    errors = []
    for name, service in services.items():
        env = service.get("environment") or {}
        for key in env:
            if name in OUR_SERVICES and key not in SETTINGS:
                errors.append(f"{name}: {key} is not a setting of either binary")
        for port in service.get("ports", []):
            if port.get("published") and port.get("host_ip") != "127.0.0.1":
                errors.append(f"{name}: port {port.get('published')} is not bound to 127.0.0.1")
        build = service.get("build")
        if build:
            check_dockerfile(Path(build["context"]) / build["dockerfile"], errors)

    for name, setting in (("ingress", "INGRESS_LISTEN"), ("ingress", "INGRESS_ADMIN_LISTEN"),
                          ("consumer", "CONSUMER_ADMIN_ADDR")):
        value = (services.get(name, {}).get("environment") or {}).get(setting, "")
        if not value.startswith("0.0.0.0:"):
            errors.append(f"{name}: {setting}={value!r} must listen on 0.0.0.0 in a container")
    init = services.get("topic-init", {})
    if (init.get("environment") or {}).get("TOPICS_BOOKINGS_PARTITIONS") != "12":
        errors.append("topic-init must create bookings with 12 partitions")
    if "ensure-topics" not in (init.get("command") or []):
        errors.append("topic-init must run `consumer ensure-topics`")
    store = (services.get("consumer", {}).get("environment") or {}).get("CONSUMER_STORE_DIR")
    mounts = [v for v in services.get("consumer", {}).get("volumes", []) if v.get("target") == store]
    if not mounts or mounts[0].get("type") != "volume":
        errors.append("consumer: CONSUMER_STORE_DIR must be a named volume shared by all replicas")
    for service in ("kafka", "redis", "ingress", "consumer", "prometheus", "grafana", "topic-init"):
        if service not in services:
            errors.append(f"service {service} is missing")

    for error in errors:
        print(f"FAIL {error}")
    print(f"{len(services)} services checked: {'OK' if not errors else f'{len(errors)} failure(s)'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
