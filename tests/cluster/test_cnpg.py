"""The chart's CloudNativePG objects against the local kube-apiserver with the real CRDs of the
pinned versions (tests/cluster/cnpg.py): the prod values as the program renders them with
database.mode cloudnativepg are installed with helm into a namespace enforcing Pod Security
"restricted", and every Cluster, Pooler, ScheduledBackup, ObjectStore and ImageCatalog must be
accepted by the API server (schema and CEL rules of the CRDs); a recovery Cluster and objects the
CRDs must refuse are checked with server-side dry runs.

Not here: the operator and its webhooks (their images cannot run), so nothing reconciles the
objects into pods, Services or PodDisruptionBudgets.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.chart.conftest import CNPG_VALUES, PROGRAM_VALUES, deep_merge

from .cnpg import install_crds
from .harness import ROOT, Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

CHART = ROOT / "charts" / "pganalytics"
RELEASE = "pga"
NAMESPACE = "pga-cnpg"
KINDS = ("Cluster", "Pooler", "ScheduledBackup", "ObjectStore", "ImageCatalog")
RESOURCES = {
    "Cluster": "clusters.postgresql.cnpg.io",
    "Pooler": "poolers.postgresql.cnpg.io",
    "ScheduledBackup": "scheduledbackups.postgresql.cnpg.io",
    "ObjectStore": "objectstores.barmancloud.cnpg.io",
    "ImageCatalog": "imagecatalogs.postgresql.cnpg.io",
}


def _secret(name: str, data: dict, type_: str = "Opaque") -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": type_, "stringData": data,
            "metadata": {"name": name, "namespace": NAMESPACE}}  # fmt: skip


@pytest.fixture(scope="module")
def installed(cluster: Cluster) -> dict:
    install_crds(cluster)
    labels = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn")}
    cluster.apply(yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": NAMESPACE, "labels": labels}}))  # fmt: skip
    from tests.conftest import credential_keys

    creds = {k: "x" + k.replace("-", "")[:20] for k in credential_keys()}
    creds["encryption-key"] = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
    creds["grafana-admin-user"] = "admin"
    cluster.apply(yaml.safe_dump(_secret(f"{RELEASE}-credentials", creds)))
    auth = CNPG_VALUES["cloudnativepg"]["auth"]
    for key, role in (("superuserSecret", "postgres"), ("appSecret", "pganalytics"),
                      ("readerSecret", "pganalytics_grafana")):  # fmt: skip
        cluster.apply(yaml.safe_dump(_secret(auth[key], {"username": role, "password": "p"},
                                             "kubernetes.io/basic-auth")))  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="pga-cnpg-"))
    values = workdir / "values.yaml"
    values.write_text(yaml.safe_dump(deep_merge(PROGRAM_VALUES, CNPG_VALUES)))
    install = cluster.helm(
        "install", RELEASE, str(CHART), "-n", NAMESPACE,
        "-f", str(CHART / "values-prod.yaml"), "-f", str(values), "--timeout", "240s",
        check=False,
    )  # fmt: skip
    if install.returncode != 0:
        pytest.fail(f"helm install failed:\n{install.stdout}\n{install.stderr}", pytrace=False)
    manifest = cluster.helm("get", "manifest", RELEASE, "-n", NAMESPACE).stdout
    return {"manifest": [d for d in yaml.safe_load_all(manifest) if d], "workdir": workdir}


def _stored(cluster: Cluster, kind: str, name: str) -> dict:
    return cluster.kubectl_json("get", RESOURCES[kind], name, "-n", NAMESPACE)


def test_every_cnpg_object_is_stored_as_rendered(cluster: Cluster, installed: dict):
    rendered = [d for d in installed["manifest"] if d["kind"] in KINDS]
    assert sorted(d["kind"] for d in rendered) == sorted(KINDS)
    for doc in rendered:
        stored = _stored(cluster, doc["kind"], doc["metadata"]["name"])
        # Every field the chart set survived validation and pruning (structural schemas drop
        # unknown fields silently; a pruned field would be missing here).
        missing = _missing(doc["spec"], stored["spec"])
        assert not missing, f"{doc['kind']} {doc['metadata']['name']}: pruned {missing}"


def _missing(want, got, path="spec") -> list[str]:
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [path]
        return [m for k, v in want.items() for m in _missing(v, got.get(k), f"{path}.{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) < len(want):
            return [path]
        return [m for i, v in enumerate(want) for m in _missing(v, got[i], f"{path}[{i}]")]
    return [] if str(want) == str(got) else [f"{path} ({want!r} -> {got!r})"]


def _dry_run(cluster: Cluster, doc: dict):
    return cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(doc),
                           check=False)  # fmt: skip


def test_a_recovery_cluster_is_accepted(cluster: Cluster, installed: dict):
    values = deep_merge(PROGRAM_VALUES, CNPG_VALUES, {"cloudnativepg": {
        "clusterName": "pganalytics-db-restored",
        "recovery": {"enabled": True, "sourceClusterName": "pganalytics-db",
                     "targetTime": "2026-01-01T02:15:00Z"}}})  # fmt: skip
    path = installed["workdir"] / "recovery.yaml"
    path.write_text(yaml.safe_dump(values))
    text = cluster.helm("template", RELEASE, str(CHART), "-n", NAMESPACE, "-f",
                        str(CHART / "values-prod.yaml"), "-f", str(path)).stdout  # fmt: skip
    doc = next(d for d in yaml.safe_load_all(text) if d and d["kind"] == "Cluster")
    assert doc["spec"]["bootstrap"]["recovery"]["recoveryTarget"]["targetTime"]
    proc = _dry_run(cluster, doc)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        ("Pooler", lambda s: s["pgbouncer"].update(poolMode="statement"), "poolMode"),
        ("Cluster", lambda s: s.update(instances=0), "instances"),
        ("ScheduledBackup", lambda s: s.update(method="tape"), "method"),
    ],
)
def test_the_crds_refuse_what_the_operator_would(cluster, installed, kind, change, message):
    """The schemas are live: a value outside a CRD's enum or bounds is refused."""
    doc = copy.deepcopy(next(d for d in installed["manifest"] if d["kind"] == kind))
    doc["metadata"]["name"] += "-bad"
    change(doc["spec"])
    proc = _dry_run(cluster, doc)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
