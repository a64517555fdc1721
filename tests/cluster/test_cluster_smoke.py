"""The harness itself: the control plane is the pinned one, KWOK nodes span two zones, Pod
Security admission really rejects a non-compliant pod (so "admitted under restricted" in the
chart tests means something), and the fake provisioner binds a WaitForFirstConsumer claim in
the zone of the pod's node."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from .harness import NODES, ROOT, STORAGE_CLASS, Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

NS = "pga-smoke"

COMPLIANT = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "containers": [
        {
            "name": "app",
            "image": "example.invalid/app:1",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
}


def _pinned(name: str) -> str:
    for line in (ROOT / "tools" / "versions.env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    raise AssertionError(f"{name} is not pinned in tools/versions.env")


def _wait(what, check, timeout=60.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = check()
        if ok:
            return last
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}: {last}", pytrace=False)


@pytest.fixture(scope="module")
def ns(cluster: Cluster):
    cluster.apply(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": NS,
                    "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                },
            }
        )
    )
    yield NS
    cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)


def test_server_is_the_pinned_kubernetes(cluster: Cluster):
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == _pinned("KUBERNETES_VERSION")


def test_simulated_nodes_ready_in_two_zones(cluster: Cluster):
    nodes = cluster.kubectl_json("get", "nodes")["items"]
    zones = {
        n["metadata"]["name"]: n["metadata"]["labels"].get("topology.kubernetes.io/zone")
        for n in nodes
    }
    assert zones == dict(NODES)
    assert len(set(zones.values())) >= 2
    for n in nodes:
        ready = [c for c in n["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", n["metadata"]["name"]


def test_pod_security_rejects_a_non_compliant_pod(cluster: Cluster, ns: str):
    # No securityContext at all: fine under "baseline", rejected under "restricted".
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "plain", "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "example.invalid/c:1"}]},
    }
    proc = cluster.kubectl("create", "-f", "-", input=yaml.safe_dump(bad), check=False)
    assert proc.returncode != 0
    assert "violates PodSecurity" in proc.stderr and "restricted" in proc.stderr, proc.stderr


def test_compliant_pod_runs_and_claim_binds_in_its_zone(cluster: Cluster, ns: str):
    docs = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": ns},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "app", "namespace": ns},
            "spec": {
                **COMPLIANT,
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            },
        },
    ]
    cluster.kubectl("create", "-f", "-", input=yaml.safe_dump_all(docs))

    def running():
        pod = cluster.kubectl_json("get", "pod", "app", "-n", ns)
        ready = any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod["status"].get("conditions", [])
        )
        return pod["status"].get("phase") == "Running" and ready, pod["status"]

    _wait("the pod to be Running and Ready", running)
    pvc = cluster.kubectl_json("get", "pvc", "data", "-n", ns)
    # The DefaultStorageClass admission plugin gave the claim the harness's default class.
    assert pvc["spec"]["storageClassName"] == STORAGE_CLASS
    assert pvc["status"]["phase"] == "Bound"
    pv = cluster.kubectl_json("get", "pv", pvc["spec"]["volumeName"])
    node = cluster.kubectl_json("get", "pod", "app", "-n", ns)["spec"]["nodeName"]
    zone = dict(NODES)[node]
    term = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term["key"] == "topology.kubernetes.io/zone" and term["values"] == [zone]


def test_a_jobs_pod_succeeds_and_the_job_completes(cluster: Cluster, ns: str):
    # Pulumi awaits Jobs (the chart's database bootstrap Job): KWOK must finish their pods.
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "bootstrap", "namespace": ns},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {**COMPLIANT, "restartPolicy": "Never"}},
        },
    }
    cluster.kubectl("create", "-f", "-", input=yaml.safe_dump(job))

    def complete():
        status = cluster.kubectl_json("get", "job", "bootstrap", "-n", ns).get("status", {})
        done = any(
            c["type"] == "Complete" and c["status"] == "True" for c in status.get("conditions", [])
        )
        return done and status.get("succeeded") == 1, status

    _wait("the Job to complete", complete)
    pods = cluster.kubectl_json("get", "pods", "-n", ns, "-l", "job-name=bootstrap")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
