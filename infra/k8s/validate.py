#!/usr/bin/env python3
"""Renders every Kustomize overlay and validates the result offline.

For each of base, overlays/dev and overlays/prod:
  1. render with `kubectl kustomize` (or a standalone `kustomize build`);
  2. validate every object against the Kubernetes OpenAPI schema of --kubernetes-version
     with kubernetes-validate (PyPI; the schemas ship inside the package), strict, so an
     unknown or misspelt field fails;
  3. validate the KEDA ScaledObject against the schema of KEDA's CRD as packaged by
     cloudcoil.models.keda (PyPI), made strict (no unknown fields) here;
  4. check what no schema can: every setting of ingress/src/config.rs and
     consumers/src/config.rs is in its ConfigMap, and nothing else is; probes hit /healthz and /readyz on the
     admin port the ConfigMap makes the binary listen on (not loopback); the KEDA trigger
     names the scaled process's group, topic and brokers and maxReplicaCount equals that
     topic's partition count; every ConfigMap, claim, scale target and PDB selector
     refers to something rendered. The partners Secret is the one allowed external
     reference.

Run it with a Python that has kubernetes-validate, cloudcoil.models.keda and PyYAML
(infra/check-ops.sh provides one). Exits 1 if anything fails.
"""

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml
from jsonschema import Draft202012Validator

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TARGETS = ["base", "overlays/dev", "overlays/prod"]
EXTERNAL_SECRETS = {"ingress-partners"}
CONFIG_SOURCES = {
    "ingress-config": REPO / "ingress/src/config.rs",
    "consumer-config": REPO / "consumers/src/config.rs",
}
# Each ScaledObject's Kafka trigger: the settings naming its group and topic, and the
# setting of that topic's partition count (its maxReplicaCount: more would sit idle).
SCALED_ON = {
    "consumer": ("CONSUMER_GROUP_ID", "CONSUMER_BOOKINGS_TOPIC", "TOPICS_BOOKINGS_PARTITIONS"),
    "consumer-deliver": ("CONSUMER_WEBHOOK_GROUP", "CONSUMER_DECISIONS_TOPIC", "TOPICS_AUX_PARTITIONS"),
}
ADMIN_SETTING = {"ingress": "INGRESS_ADMIN_LISTEN", "consumer": "CONSUMER_ADMIN_ADDR"}


def render(target):
    if shutil.which("kubectl"):
        command = ["kubectl", "kustomize", str(HERE / target)]
    elif shutil.which("kustomize"):
        command = ["kustomize", "build", str(HERE / target)]
    else:
        sys.exit("neither kubectl nor kustomize is installed: cannot render the overlays")
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def keda_validator():
    from cloudcoil.models.keda.v1alpha1 import ScaledObject

    schema = ScaledObject.model_json_schema(by_alias=True, mode="validation")

    def strict(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                strict(value)
        elif isinstance(node, list):
            for value in node:
                strict(value)

    strict(schema)
    return Draft202012Validator(schema)


def env_settings(path):
    return set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', path.read_text()))


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


def semantic_checks(docs):
    errors = []
    configmaps = by_kind(docs, "ConfigMap")
    deployments = by_kind(docs, "Deployment")
    claims = by_kind(docs, "PersistentVolumeClaim")
    secrets = by_kind(docs, "Secret")

    for name, source in CONFIG_SOURCES.items():
        if name not in configmaps:
            errors.append(f"ConfigMap {name} is missing")
            continue
        settings, data = env_settings(source), set(configmaps[name].get("data", {}))
        if settings - data:
            errors.append(f"ConfigMap {name} lacks {sorted(settings - data)} from {source.relative_to(REPO)}")
        if data - settings:
            errors.append(f"ConfigMap {name} sets {sorted(data - settings)}, which the binary never reads")

    pod_specs = [(f"Deployment/{n}", d["spec"]["template"]) for n, d in deployments.items()]
    pod_specs += [(f"Job/{n}", d["spec"]["template"]) for n, d in by_kind(docs, "Job").items()]
    for where, template in pod_specs:
        spec = template["spec"]
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef", {}).get("name")
                if ref and ref not in configmaps:
                    errors.append(f"{where} uses missing ConfigMap {ref}")
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                if claim not in claims:
                    errors.append(f"{where} mounts missing claim {claim}")
            if "secret" in volume:
                secret = volume["secret"]["secretName"]
                if secret not in secrets and secret not in EXTERNAL_SECRETS:
                    errors.append(f"{where} mounts unknown Secret {secret}")

    for name, setting in ADMIN_SETTING.items():
        deployment = deployments.get(name)
        if deployment is None:
            errors.append(f"Deployment {name} is missing")
            continue
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        config = configmaps.get(f"{name}-config", {}).get("data", {})
        address = config.get(setting, "")
        host, _, port = address.rpartition(":")
        if host in ("127.0.0.1", "localhost", "[::1]", ""):
            errors.append(f"{name}: {setting}={address!r} is not reachable by the kubelet's probes")
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        if str(ports.get("admin")) != port:
            errors.append(f"{name}: port 'admin' is {ports.get('admin')}, {setting} listens on {port}")
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = container.get(probe, {}).get("httpGet", {})
            if get.get("path") != path or get.get("port") not in ("admin", ports.get("admin")):
                errors.append(f"{name}: {probe} must GET {path} on the admin port, has {get}")
        if not container.get("resources", {}).get("requests"):
            errors.append(f"{name}: no resource requests")

    consumer = configmaps.get("consumer-config", {}).get("data", {})
    scaled = by_kind(docs, "ScaledObject")
    for name in SCALED_ON:
        if name not in scaled:
            errors.append(f"ScaledObject {name} is missing")
    for name, obj in scaled.items():
        spec = obj["spec"]
        if spec["scaleTargetRef"]["name"] not in deployments:
            errors.append(f"ScaledObject {name} targets a missing Deployment")
        if name not in SCALED_ON:
            errors.append(f"ScaledObject {name}: unknown; add it to SCALED_ON")
            continue
        group_setting, topic_setting, partitions_setting = SCALED_ON[name]
        partitions = int(consumer.get(partitions_setting, "0"))
        if spec.get("maxReplicaCount") != partitions:
            errors.append(f"ScaledObject {name}: maxReplicaCount {spec.get('maxReplicaCount')} != {partitions} partitions")
        kafka = [t for t in spec["triggers"] if t["type"] == "kafka"]
        if len(kafka) != 1:
            errors.append(f"ScaledObject {name}: expected one kafka trigger")
            continue
        meta = kafka[0]["metadata"]
        for key, setting in (("consumerGroup", group_setting), ("topic", topic_setting),
                             ("bootstrapServers", "CONSUMER_KAFKA_BROKERS")):
            if meta.get(key) != consumer.get(setting):
                errors.append(f"ScaledObject {name}: {key}={meta.get(key)!r} but {setting}={consumer.get(setting)!r}")
        if not str(meta.get("lagThreshold", "")).isdigit():
            errors.append(f"ScaledObject {name}: lagThreshold must be a whole number string")

    for name, hpa in by_kind(docs, "HorizontalPodAutoscaler").items():
        if hpa["spec"]["scaleTargetRef"]["name"] not in deployments:
            errors.append(f"HPA {name} targets a missing Deployment")
    for name, pdb in by_kind(docs, "PodDisruptionBudget").items():
        selector = pdb["spec"]["selector"]["matchLabels"]
        if not any(selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
                   for d in deployments.values()):
            errors.append(f"PDB {name} selects no Deployment's pods")
    return errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubernetes-version", default="1.32.0")
    args = parser.parse_args()

    keda = keda_validator()
    failures = 0
    for target in TARGETS:
        try:
            docs = render(target)
        except RuntimeError as error:
            print(f"FAIL {target}: {error}")
            failures += 1
            continue
        problems = []
        for doc in docs:
            ident = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            if doc.get("apiVersion", "").startswith("keda.sh/"):
                for error in keda.iter_errors(doc):
                    path = "/".join(str(p) for p in error.absolute_path)
                    problems.append(f"{ident}: KEDA schema: {path}: {error.message}")
                continue
            try:
                kubernetes_validate.validate(doc, args.kubernetes_version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = "/".join(str(p) for p in error.path)
                problems.append(f"{ident}: Kubernetes {args.kubernetes_version} schema: {path}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(f"{ident}: no schema: {error}")
        problems += semantic_checks(docs)
        kinds = sorted({d["kind"] for d in docs})
        if problems:
            failures += 1
            print(f"FAIL {target}: {len(docs)} objects")
            for problem in problems:
                print(f"  {problem}")
        else:
            print(f"ok   {target}: {len(docs)} objects valid ({', '.join(kinds)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
