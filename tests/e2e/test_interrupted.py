"""f. An interrupted deploy: `pulumi up` SIGKILLed part-way through a first deploy, then the
recovery of docs/RECOVERY.md; and an API server outage during an `up`."""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest

from .checks import objects_in_cluster, secret_data, wait_for
from .conftest import dev_stack

NAMESPACE = "pga-e2e-interrupted"
OUTAGE_NAMESPACE = "pga-e2e-outage"
FORCE = {"PULUMI_K8S_ENABLE_PATCH_FORCE": "true"}
SECRET = "pganalytics-credentials"
INSTANCE = "app.kubernetes.io/instance=pganalytics"


@pytest.fixture(scope="module")
def proj(new_project, cluster):
    project = dev_stack(new_project, cluster, NAMESPACE)
    yield project
    project.destroy(check=False, env=FORCE)


@pytest.fixture(scope="module")
def outage(new_project, cluster):
    project = dev_stack(new_project, cluster, OUTAGE_NAMESPACE)
    yield project
    project.destroy(check=False)


def stack_matches_cluster(project, cluster, namespace: str = NAMESPACE) -> None:
    """Every Kubernetes object of the state exists, once; every release object of those kinds
    in the namespace is in the state (nothing orphaned)."""
    objects = project.k8s_objects()
    entries = Counter(
        (r["type"], r["urn"].split("::")[-1])
        for r in project.resources()
        if r["type"].startswith("kubernetes:")
    )
    assert not [e for e, n in entries.items() if n > 1], entries
    kinds = {k for (k, ns, _) in objects if ns == namespace}
    in_state = {key for key in objects if key[1] == namespace}
    in_cluster = objects_in_cluster(cluster, namespace, kinds)
    assert in_state <= in_cluster, sorted(in_state - in_cluster)
    # Objects the controllers make (ReplicaSets, Pods: ownerReferences; the claims of a
    # StatefulSet's volumeClaimTemplates, `<template>-<statefulset>-<ordinal>`) are not the
    # program's.
    claim = re.compile(
        "^.+-(" + "|".join(re.escape(n) for (k, _, n) in in_state if k == "StatefulSet") + r")-\d+$"
    )
    labelled = set()
    for kind in kinds:
        listing = cluster.kubectl_json("get", kind, "-n", namespace, "-l", INSTANCE)
        for item in listing["items"]:
            meta = item["metadata"]
            if meta.get("ownerReferences"):
                continue
            if item["kind"] == "PersistentVolumeClaim" and claim.match(meta["name"]):
                continue
            labelled.add((item["kind"], namespace, meta["name"]))
    assert labelled <= in_state, f"orphaned objects: {sorted(labelled - in_state)}"


def test_f_killed_first_deploy_recovers_as_documented(proj, cluster, tmp_path):
    log = tmp_path / "up.log"
    proc = proj.start("up", "--yes", "--stack", proj.stack, log=log)

    def midway():
        if proc.poll() is not None:
            return "exited"
        secret = cluster.kubectl("get", "secret", "-n", NAMESPACE, SECRET, check=False)
        chart = cluster.kubectl(
            "get", "service,pvc", "-n", NAMESPACE, "-l", INSTANCE, "-o", "name", check=False
        )
        # Once the chart's claim exists: a pod created before its claim waits for the
        # scheduler's retry of unschedulable pods (up to 5 min), see docs/RECOVERY.md.
        made = chart.stdout
        return "midway" if secret.returncode == 0 and "persistentvolumeclaim/" in made else None

    reached = wait_for("the deploy to get half-way", midway, 300, 0.2)
    assert reached == "midway", f"`pulumi up` ended before it could be killed:\n{log.read_text()}"
    proj.kill(proc)
    credentials = secret_data(cluster, NAMESPACE, SECRET)

    # The recovery of docs/RECOVERY.md, step by step.
    proj.run("cancel", "--yes", "--stack", proj.stack, check=False)  # a lock, if one is left
    proj.run("refresh", "--yes", "--clear-pending-creates", "--stack", proj.stack)
    proj.up(env=FORCE)

    stack_matches_cluster(proj, cluster)
    assert secret_data(cluster, NAMESPACE, SECRET) == credentials
    clean = proj.preview("--expect-no-changes", check=False, env=FORCE)
    assert clean.returncode == 0, clean.describe()
    # A later change of a field the dead run also applied: forced too, as documented.
    proj.set_config("pganalytics:chart.values.backend.replicaCount", "2")
    proj.up(env=FORCE)
    sts = cluster.kubectl_json("get", "statefulset", "-n", NAMESPACE, "pganalytics-backend")
    assert sts["spec"]["replicas"] == 2
    stack_matches_cluster(proj, cluster)


def test_f_api_server_outage_fails_clearly_then_up_converges(outage, cluster, tmp_path):
    log = tmp_path / "up.log"
    cluster.stop_apiserver()
    try:
        proc = outage.start("up", "--yes", "--stack", outage.stack, log=log)
        time.sleep(8)  # the program runs and the provider tries to reach the cluster
    finally:
        cluster.start_apiserver()
    code = proc.wait(timeout=600)
    output = log.read_text()
    assert code != 0, f"`pulumi up` did not notice the outage:\n{output}"
    assert "connection refused" in output or "unreachable" in output, output

    outage.up()
    stack_matches_cluster(outage, cluster, OUTAGE_NAMESPACE)
    clean = outage.preview("--expect-no-changes", check=False)
    assert clean.returncode == 0, clean.describe()
