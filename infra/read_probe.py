#!/usr/bin/env python3
"""Reads of the ingress's availability projections while part of a Redis Cluster is gone.

    read_probe.py setup INGRESS_URL TENANT       sets inventory for PROPERTIES properties of
                                                 TENANT and waits until every one reads back
    read_probe.py served-by PORT TENANT          the properties whose availability key the
                                                 Redis Cluster node on PORT serves, one a line
    read_probe.py probe INGRESS_URL TENANT LOST  reads every property once: those listed in
                                                 the file LOST must answer 503, the others 200;
                                                 prints the counts, exits 1 on any other answer

Used by infra/faults.sh redis-slots-lost. Standard library only, so it runs wherever the
stack scripts do.
"""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

PROPERTIES = [f"probe-{i:02}" for i in range(32)]
ROOM_TYPE = "DBL"
NIGHTS = ("2031-03-01", "2031-03-04")
# The local demo partner of infra/dev-partners.json that may set inventory for any tenant.
BEARER = "Bearer demo-ota-1-secret"


def request(method, url, body=None, key=None):
    headers = {"authorization": BEARER}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    if key is not None:
        headers["idempotency-key"] = key
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, None


def availability_url(ingress, tenant, prop):
    return (f"{ingress}/v1/availability?tenant_id={tenant}&property_id={prop}"
            f"&room_type={ROOM_TYPE}&from={NIGHTS[0]}&to={NIGHTS[1]}")


def setup(ingress, tenant):
    for prop in PROPERTIES:
        body = {"tenant_id": tenant, "property_id": prop, "room_type": ROOM_TYPE,
                "from": NIGHTS[0], "to": NIGHTS[1], "units": 5}
        for _ in range(20):  # a fresh ingress may shed its first publishes: retry, same key
            status, _ = request("PUT", f"{ingress}/v1/inventory", body, key=f"{tenant}-{prop}")
            if status < 300:
                break
            time.sleep(0.25)
        else:
            sys.exit(f"setting inventory for {prop} failed: {status}")
    deadline = time.monotonic() + 30
    pending = list(PROPERTIES)
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if not projected(ingress, tenant, p)]
        time.sleep(0.2)
    if pending:
        sys.exit(f"availability of {len(pending)} probe properties never reached the projections")


def projected(ingress, tenant, prop):
    status, body = request("GET", availability_url(ingress, tenant, prop))
    return status == 200 and all(n["remaining"] is not None for n in body["nights"])


def served_by(port, tenant):
    # Without -c, a node answers only for keys of its own slots and refuses the others
    # with a MOVED redirect.
    for prop in PROPERTIES:
        key = f"avail:{tenant}:{prop}:{ROOM_TYPE}"
        answer = subprocess.run(["redis-cli", "-p", port, "exists", key],
                                capture_output=True, text=True, check=True).stdout
        if not answer.startswith("MOVED"):
            print(prop)


def probe(ingress, tenant, lost_file):
    lost = set(open(lost_file).read().split())
    if not lost or lost == set(PROPERTIES):
        sys.exit(f"the lost node serves {len(lost)} of {len(PROPERTIES)} probe keys: nothing to compare")
    wrong = []
    for prop in PROPERTIES:
        expected = 503 if prop in lost else 200
        status, _ = request("GET", availability_url(ingress, tenant, prop))
        if status != expected:
            wrong.append(f"{prop}: {status}, expected {expected}")
    print(f"reads while the slots were lost: {len(lost)} keys in them (503 expected), "
          f"{len(PROPERTIES) - len(lost)} elsewhere (200 expected), {len(wrong)} other answers")
    for line in wrong:
        print(f"  {line}")
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"setup": setup, "served-by": served_by, "probe": probe}[command](*args)
