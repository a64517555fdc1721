"""What the e2e tests look at in the cluster (through the harness's admin kubectl)."""

from __future__ import annotations

import base64
import time

from tests.cluster.harness import Cluster

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def wait_for(what: str, check, timeout: float = 60, interval: float = 1.0):
    """Polls `check()` until it returns a truthy value; fails naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def workload_not_ready(obj: dict) -> str | None:
    """Why a workload is not Ready (None when it is), from its status as the controllers set it."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    spec, status = obj.get("spec", {}), obj.get("status", {})
    # Jobs report no observedGeneration (their spec is immutable); the others must have
    # caught up with the current spec before their counts mean anything.
    if kind != "Job" and status.get("observedGeneration", 0) < obj["metadata"].get("generation", 0):
        return f"{kind} {name}: status not observed yet"
    if kind in ("Deployment", "StatefulSet"):
        want = spec.get("replicas", 1)
        if status.get("readyReplicas", 0) != want or status.get("updatedReplicas", 0) != want:
            return f"{kind} {name}: {status.get('readyReplicas', 0)}/{want} ready"
    elif kind == "DaemonSet":
        want = status.get("desiredNumberScheduled", 0)
        if want == 0 or status.get("numberReady", 0) != want:
            return f"{kind} {name}: {status.get('numberReady', 0)}/{want} ready"
    elif kind == "Job":
        done = {c["type"] for c in status.get("conditions", []) if c.get("status") == "True"}
        if "Complete" not in done:
            return f"Job {name}: not complete (conditions {sorted(done)})"
    return None


def secret_data(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    obj = cluster.kubectl_json("get", "secret", "-n", namespace, name)
    return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}


def uid(cluster: Cluster, kind: str, namespace: str, name: str) -> str:
    obj = cluster.kubectl_json("get", kind, "-n", namespace, name)
    return obj["metadata"]["uid"]


def namespace_gone(cluster: Cluster, namespace: str) -> bool:
    proc = cluster.kubectl("get", "namespace", namespace, check=False)
    return proc.returncode != 0 and "NotFound" in proc.stderr


def objects_in_cluster(cluster: Cluster, namespace: str, kinds: set[str]) -> set[tuple]:
    """(kind, namespace, name) of every object of `kinds` in `namespace`."""
    found = set()
    listing = cluster.kubectl_json("get", ",".join(sorted(kinds)), "-n", namespace)
    for item in listing.get("items", []):
        found.add((item["kind"], namespace, item["metadata"]["name"]))
    return found


def services_not_ready(cluster: Cluster, namespace: str) -> list[str]:
    """Why each Service with a selector in `namespace` is not ready (empty when all are): its
    EndpointSlices must hold a ready address and, unless the Service publishes not-ready
    addresses on purpose, no address that is not ready (what the provider's Service await
    waited for, plus the ready address it did not require)."""
    services = cluster.kubectl_json("get", "services", "-n", namespace)["items"]
    slices = cluster.kubectl_json("get", "endpointslices.discovery.k8s.io", "-n", namespace)
    ready: dict[str, int] = {}
    not_ready: dict[str, int] = {}
    for s in slices["items"]:
        name = s["metadata"].get("labels", {}).get("kubernetes.io/service-name", "")
        for endpoint in s.get("endpoints") or []:
            counts = ready if endpoint.get("conditions", {}).get("ready") else not_ready
            counts[name] = counts.get(name, 0) + 1
    reasons = []
    for svc in services:
        name, spec = svc["metadata"]["name"], svc["spec"]
        if not spec.get("selector"):
            continue
        if not ready.get(name):
            reasons.append(f"Service {name}: no ready address in its EndpointSlices")
        elif not_ready.get(name) and not spec.get("publishNotReadyAddresses"):
            reasons.append(f"Service {name}: {not_ready[name]} address(es) not ready")
    return reasons
