"""f. An interrupted deploy: `pulumi up` SIGKILLed part-way through a first deploy, then the
recovery of docs/RECOVERY.md; and an API server outage during an `up`."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from .checks import objects_in_cluster, secret_data, wait_for
from .conftest import stack_config

NAMESPACE = "pga-e2e-interrupted"
SECRET = "pganalytics-credentials"
INSTANCE = "app.kubernetes.io/instance=pganalytics"


@pytest.fixture(scope="module")
def proj(new_project, cluster):
    project = new_project("dev")
    project.init(
        stack_config("Pulumi.dev.yaml", chart={"namespace": NAMESPACE}),
        {"pganalytics:kubeconfig": cluster.inline_kubeconfig()},
    )
    project.recovered = False
    yield project
    project.destroy(check=False)


def stack_matches_cluster(project, cluster) -> None:
    """Every Kubernetes object of the state exists, once; every release object of those kinds
    in the namespace is in the state (nothing orphaned)."""
    objects = project.k8s_objects()
    entries = Counter(
        (r["type"], r["urn"].split("::")[-1])
        for r in project.resources()
        if r["type"].startswith("kubernetes:")
    )
    assert not [e for e, n in entries.items() if n > 1], entries
    kinds = {k for (k, ns, _) in objects if ns == NAMESPACE}
    in_state = {key for key in objects if key[1] == NAMESPACE}
    in_cluster = objects_in_cluster(cluster, NAMESPACE, kinds)
    assert in_state <= in_cluster, sorted(in_state - in_cluster)
    labelled = set()
    for kind in kinds:
        listing = cluster.kubectl_json("get", kind, "-n", NAMESPACE, "-l", INSTANCE)
        labelled |= {(i["kind"], NAMESPACE, i["metadata"]["name"]) for i in listing["items"]}
    assert labelled <= in_state, f"orphaned objects: {sorted(labelled - in_state)}"


def test_f_killed_first_deploy_recovers_as_documented(proj, cluster, tmp_path):
    log = tmp_path / "up.log"
    proc = proj.start("up", "--yes", "--stack", proj.stack, log=log)

    def midway():
        if proc.poll() is not None:
            return "exited"
        secret = cluster.kubectl("get", "secret", "-n", NAMESPACE, SECRET, check=False)
        chart = cluster.kubectl(
            "get", "service,configmap", "-n", NAMESPACE, "-l", INSTANCE, "-o", "name", check=False
        )
        return "midway" if secret.returncode == 0 and chart.stdout.strip() else None

    reached = wait_for("the deploy to get half-way", midway, 300, 0.2)
    assert reached == "midway", f"`pulumi up` ended before it could be killed:\n{log.read_text()}"
    proj.kill(proc)
    credentials = secret_data(cluster, NAMESPACE, SECRET)

    # The recovery of docs/RECOVERY.md, step by step.
    proj.run("cancel", "--yes", "--stack", proj.stack, check=False)  # a lock, if one is left
    refresh = proj.run("refresh", "--yes", "--clear-pending-creates", "--stack", proj.stack)
    assert "pending" not in refresh.stderr.lower() or "clear" in refresh.stderr.lower()
    proj.up()
    proj.recovered = True

    stack_matches_cluster(proj, cluster)
    assert secret_data(cluster, NAMESPACE, SECRET) == credentials
    clean = proj.preview("--expect-no-changes", check=False)
    assert clean.returncode == 0, clean.describe()


def test_f_api_server_outage_fails_clearly_then_up_converges(proj, cluster, tmp_path):
    if not proj.recovered:
        pytest.fail("the recovery test before this one did not succeed", pytrace=False)
    proj.set_config("pganalytics:chart.values.backend.replicaCount", "2")
    log = tmp_path / "up.log"
    cluster.stop_apiserver()
    try:
        proc = proj.start("up", "--yes", "--stack", proj.stack, log=log)
        time.sleep(8)  # the program runs and the provider tries to reach the cluster
    finally:
        cluster.start_apiserver()
    code = proc.wait(timeout=600)
    output = log.read_text()
    assert code != 0, f"`pulumi up` did not notice the outage:\n{output}"
    assert "connection refused" in output or "unreachable" in output, output

    proj.up()
    sts = cluster.kubectl_json("get", "statefulset", "-n", NAMESPACE, "pganalytics-backend")
    assert sts["spec"]["replicas"] == 2
    stack_matches_cluster(proj, cluster)
    clean = proj.preview("--expect-no-changes", check=False)
    assert clean.returncode == 0, clean.describe()
