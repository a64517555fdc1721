"""volumeSnapshots against the local kube-apiserver (harness.py), with the real VolumeSnapshot
CRDs (tests/cluster/fixtures/snapshot-crds.yaml, from kubernetes-csi/external-snapshotter).

The chart is installed with snapshots on into a namespace enforcing Pod Security "restricted";
the StatefulSet controller and the harness's provisioner make and bind the real claims. Then
the script the chart shipped (read back from its ConfigMap) runs as a process under dash, with
the env of the chart's CronJob, authenticated as the chart's ServiceAccount through a
TokenRequest token: the apiserver runs with --authorization-mode=RBAC, so every call it makes is
allowed by the chart's Role or refused.

STAND-IN: `StandInSnapshotter` (snapshots.py) plays the CSI snapshotter by marking snapshots
ready to use. What that cannot prove is listed in docs/BACKUP_RESTORE.md.

The tests run in file order against one install (module-scoped fixture).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .harness import ROOT, Cluster
from .snapshots import (
    GROUP,
    StandInSnapshotter,
    install_crds,
    run_script,
    service_account_kubeconfig,
    snapshots,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

CHART = ROOT / "charts" / "pganalytics"
RELEASE = "pga"
NAMESPACE = "pga-snapshots"
NAME = f"{RELEASE}-pganalytics-snapshots"
CLASS = "csi-test-snapclass"
# The claims of the chart's timescaledb StatefulSet and Grafana, as the controllers name them.
CLAIMS = {
    f"data-{RELEASE}-pganalytics-timescaledb-0": "timescaledb",
    f"{RELEASE}-pganalytics-grafana": "grafana",
}
CLAIM_LABEL = "snapshots.pganalytics.io/claim"
VALUES = {
    "volumeSnapshots": {
        "enabled": True,
        "className": CLASS,
        "components": ["timescaledb", "grafana"],
        "keep": 2,
        "readyTimeout": "60s",
    }
}


@dataclass
class Setup:
    cluster: Cluster
    workdir: Path
    script: Path
    kubeconfig: Path
    env: dict[str, str]
    stand_in: StandInSnapshotter
    last_second: int = 0

    def run(self, ready: bool = True, **overrides: str):
        """One run of the script; with `ready`, the stand-in marks its snapshots ready."""
        # Snapshot names carry a stamp to the second: runs must not share one (the CronJob's
        # runs are a minute apart at the least).
        while int(time.time()) <= self.last_second:
            time.sleep(0.05)
        proc = run_script(
            self.cluster,
            self.script,
            self.kubeconfig,
            {**self.env, **overrides},
            self.workdir,
            self.stand_in.mark_ready if ready else None,
        )
        assert not self.stand_in.errors, self.stand_in.errors
        # The run's stamp was taken before it ended: the next run starts in a later second.
        self.last_second = int(time.time())
        return proc


def _namespace() -> dict:
    labels = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn")}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": labels},
    }


def _snapshot_class() -> dict:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {"name": CLASS},
        "driver": "fake.pganalytics.test",
        "deletionPolicy": "Delete",
    }


def _created(output: str) -> list[str]:
    return re.findall(r"^create: volumesnapshot (\S+) ", output, re.M)


@pytest.fixture(scope="module")
def setup(cluster: Cluster):
    install_crds(cluster)
    cluster.apply(yaml.safe_dump(_snapshot_class()))
    cluster.apply(yaml.safe_dump(_namespace()))
    workdir = Path(tempfile.mkdtemp(prefix="pga-snapshots-"))
    values = workdir / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    install = cluster.helm(
        "install", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(values),
        "--wait", "--wait-for-jobs", "--timeout", "240s", check=False,
    )  # fmt: skip
    if install.returncode != 0:
        pytest.fail(f"helm install failed:\n{install.stdout}\n{install.stderr}", pytrace=False)
    # The script exactly as the chart shipped it to the cluster.
    configmap = cluster.kubectl_json("get", "configmap", f"{NAME}-scripts", "-n", NAMESPACE)
    script = workdir / "volume-snapshot.sh"
    script.write_text(configmap["data"]["volume-snapshot.sh"] + "\n")
    # The env of the chart's CronJob (the namespace comes from the downward API there).
    cron = cluster.kubectl_json("get", "cronjob", NAME, "-n", NAMESPACE)
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", NAMESPACE) for e in container["env"]}
    env["HOME"] = str(workdir)
    kubeconfig = service_account_kubeconfig(cluster, NAMESPACE, NAME, workdir / "sa.kubeconfig")
    stand_in = StandInSnapshotter(cluster, NAMESPACE)
    yield Setup(cluster, workdir, script, kubeconfig, env, stand_in)
    cluster.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "120s", check=False)
    cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
    shutil.rmtree(workdir)


def _by_claim(cluster: Cluster) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for snap in snapshots(cluster, NAMESPACE):
        claim = snap["metadata"].get("labels", {}).get(CLAIM_LABEL)
        if claim:
            out.setdefault(claim, []).append(snap["metadata"]["name"])
    return {claim: sorted(names) for claim, names in out.items()}


def test_the_claims_exist_and_are_bound(setup: Setup):
    for claim in CLAIMS:
        pvc = setup.cluster.kubectl_json("get", "pvc", claim, "-n", NAMESPACE)
        assert pvc["status"]["phase"] == "Bound", pvc["status"]


def test_the_job_pod_is_admitted_under_restricted(setup: Setup):
    c = setup.cluster
    c.kubectl("create", "job", "snapshot-admission", f"--from=cronjob/{NAME}", "-n", NAMESPACE)
    deadline = time.monotonic() + 60
    pods: list = []
    while time.monotonic() < deadline and not pods:
        pods = c.kubectl_json("get", "pods", "-n", NAMESPACE, "-l", "job-name=snapshot-admission")[
            "items"
        ]
        time.sleep(0.5)
    events = c.kubectl_json("get", "events", "-n", NAMESPACE)["items"]
    refused = [e["message"] for e in events if e.get("reason") == "FailedCreate"]
    c.kubectl("delete", "job", "snapshot-admission", "-n", NAMESPACE, "--wait=false")
    assert pods and not refused, refused


def test_the_role_grants_what_the_script_needs_and_no_more(setup: Setup):
    who = f"--as=system:serviceaccount:{NAMESPACE}:{NAME}"

    def can(*args: str) -> bool:
        proc = setup.cluster.kubectl("auth", "can-i", *args, who, check=False)
        return proc.stdout.strip() == "yes"

    for verb in ("get", "list", "watch", "create", "delete"):
        assert can(verb, f"volumesnapshots.{GROUP}", "-n", NAMESPACE), verb
    assert can("list", "persistentvolumeclaims", "-n", NAMESPACE)
    denied = [
        ("patch", f"volumesnapshots.{GROUP}", "-n", NAMESPACE),
        ("update", f"volumesnapshots.{GROUP}/status", "-n", NAMESPACE),
        ("create", f"volumesnapshots.{GROUP}", "-n", "default"),
        ("delete", "persistentvolumeclaims", "-n", NAMESPACE),
        ("get", "persistentvolumeclaims", "-n", NAMESPACE),
        ("deletecollection", f"volumesnapshots.{GROUP}", "-n", NAMESPACE),
        ("get", "secrets", "-n", NAMESPACE),
        ("create", f"volumesnapshotcontents.{GROUP}"),
        ("list", f"volumesnapshotclasses.{GROUP}"),
    ]
    for args in denied:
        assert not can(*args), args


def test_one_snapshot_per_selected_claim(setup: Setup):
    proc = setup.run()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not setup.stand_in.errors
    made = {s["metadata"]["name"]: s for s in snapshots(setup.cluster, NAMESPACE)}
    assert sorted(made) == sorted(_created(proc.stdout)) and len(made) == len(CLAIMS)
    for name, snap in made.items():
        claim = snap["spec"]["source"]["persistentVolumeClaimName"]
        assert re.fullmatch(rf"{re.escape(claim)}-\d{{14}}", name)
        assert snap["spec"]["volumeSnapshotClassName"] == CLASS
        assert snap["metadata"]["labels"] == {
            "app.kubernetes.io/name": "pganalytics",
            "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": CLAIMS[claim],
            CLAIM_LABEL: claim,
        }
        assert snap["status"]["readyToUse"] is True
    assert {s["spec"]["source"]["persistentVolumeClaimName"] for s in made.values()} == set(CLAIMS)
    assert "done: snapshots" in proc.stdout


def test_keep_leaves_the_newest_per_claim_and_nothing_else_is_touched(setup: Setup):
    c = setup.cluster
    # Objects that are not the script's: a manual snapshot of a claim (no claim label), and
    # another release's snapshot carrying the claim label.
    foreign = [
        {
            "metadata": {
                "name": "manual-before-upgrade",
                "labels": {"app.kubernetes.io/instance": RELEASE},
            },
            "source": next(iter(CLAIMS)),
        },
        {
            "metadata": {
                "name": "other-release-snap",
                "labels": {
                    "app.kubernetes.io/name": "pganalytics",
                    "app.kubernetes.io/instance": "other",
                    CLAIM_LABEL: next(iter(CLAIMS)),
                },
            },
            "source": next(iter(CLAIMS)),
        },
    ]
    for f in foreign:
        c.apply(
            yaml.safe_dump(
                {
                    "apiVersion": f"{GROUP}/v1",
                    "kind": "VolumeSnapshot",
                    "metadata": {**f["metadata"], "namespace": NAMESPACE},
                    "spec": {
                        "volumeSnapshotClassName": CLASS,
                        "source": {"persistentVolumeClaimName": f["source"]},
                    },
                }
            )
        )
    runs = [setup.run() for _ in range(3)]
    for proc in runs:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    newest = sorted(_created(runs[-1].stdout) + _created(runs[-2].stdout))
    # Scoped to this release (the other release's object carries the claim label too).
    mine = [n for claim, names in _by_claim(c).items() for n in names if n != "other-release-snap"]
    assert sorted(mine) == newest
    for claim in CLAIMS:
        kept = [n for n in newest if n.startswith(f"{claim}-")]
        assert len(kept) == 2, kept
    names = {s["metadata"]["name"] for s in snapshots(c, NAMESPACE)}
    assert {"manual-before-upgrade", "other-release-snap"} <= names
    assert "prune: claim" in runs[-1].stdout and "deletes:" in runs[-1].stdout


def test_a_snapshot_never_ready_fails_the_run_and_prunes_nothing(setup: Setup):
    before = {s["metadata"]["name"] for s in snapshots(setup.cluster, NAMESPACE)}
    proc = setup.run(ready=False, SNAPSHOT_READY_TIMEOUT="3s", SNAPSHOT_KEEP="1")
    assert proc.returncode != 0
    assert "not ready within 3s; nothing pruned" in proc.stderr
    # kubectl wait ran out of time: it was allowed to get and watch the snapshots.
    assert "timed out waiting" in proc.stderr and "forbidden" not in proc.stderr.lower()
    after = {s["metadata"]["name"]: s for s in snapshots(setup.cluster, NAMESPACE)}
    assert before <= set(after), "a failed run deleted snapshots"
    new = set(after) - before
    assert new == set(_created(proc.stdout)) and len(new) == len(CLAIMS)
    assert all(after[n].get("status", {}).get("readyToUse") is not True for n in new)


def test_no_matching_claim_is_an_error(setup: Setup):
    before = {s["metadata"]["name"] for s in snapshots(setup.cluster, NAMESPACE)}
    proc = setup.run(SNAPSHOT_COMPONENTS="redis backup")
    assert proc.returncode != 0
    assert "no Bound claim of components 'redis backup' of release pga" in proc.stderr
    assert {s["metadata"]["name"] for s in snapshots(setup.cluster, NAMESPACE)} == before


def test_the_service_account_cannot_reach_another_namespace(setup: Setup):
    proc = setup.run(SNAPSHOT_NAMESPACE="default")
    assert proc.returncode != 0
    assert "forbidden" in proc.stderr.lower()
