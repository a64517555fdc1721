"""volumeSnapshots: the optional CronJob that takes CSI VolumeSnapshots of the release's claims.

The pod-wide invariants (Pod Security restricted, pinned images, strict Kubernetes schemas) run
over the `volume-snapshots` scenario with every other scenario (test_invariants.py,
test_k8s_schema.py); this module checks what is particular to the snapshot objects. The script
itself runs against a real kube-apiserver in tests/cluster/test_volume_snapshots.py.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from .conftest import (
    CHART,
    RELEASE,
    SCENARIOS,
    HelmError,
    by_kind,
    component,
    find,
    helm_binary,
    pod_template,
    render,
)
from .test_toggles import _allowed, _labels

P = f"{RELEASE}-pganalytics"
NAME = f"{P}-snapshots"
SCRIPT = CHART / "files" / "snapshots" / "volume-snapshot.sh"
ON = {"volumeSnapshots": {"enabled": True, "className": "csi-snapclass"}}
# The labels volume-snapshot.sh selects claims by (besides app.kubernetes.io/component).
RELEASE_LABELS = {"app.kubernetes.io/name": "pganalytics", "app.kubernetes.io/instance": RELEASE}


def _env(objs) -> dict:
    pod = pod_template(find(objs, "CronJob", NAME))["spec"]
    (container,) = pod["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _refused(values: dict) -> str:
    with pytest.raises(HelmError) as caught:
        render(values=values)
    return caught.value.stderr


@pytest.mark.parametrize("name", sorted(n for n in SCENARIOS if n != "volume-snapshots"))
def test_off_by_default_in_every_profile(rendered, name):
    found = [o for o in rendered[name] if component(o) == "volume-snapshots"]
    assert not found, [f"{o['kind']}/{o['metadata']['name']}" for o in found]


def test_on_renders_the_job_and_its_identity(rendered):
    objs = rendered["volume-snapshots"]
    kinds = sorted(
        f"{o['kind']}/{o['metadata']['name']}" for o in objs if component(o) == "volume-snapshots"
    )
    assert kinds == sorted(
        [
            f"ConfigMap/{NAME}-scripts",
            f"CronJob/{NAME}",
            f"NetworkPolicy/{NAME}",
            f"Role/{NAME}",
            f"RoleBinding/{NAME}",
            f"ServiceAccount/{NAME}",
        ]
    )
    cron = find(objs, "CronJob", NAME)
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["timeZone"] == "Etc/UTC"
    assert len(cron["metadata"]["name"]) <= 52  # a CronJob's limit (its Jobs add 11 characters)
    pod = pod_template(cron)["spec"]
    assert pod["serviceAccountName"] == NAME
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert find(objs, "ServiceAccount", NAME)["automountServiceAccountToken"] is False
    env = _env(objs)
    assert env["SNAPSHOT_CLASS"] == "csi-snapclass"
    assert env["SNAPSHOT_COMPONENTS"] == "timescaledb grafana redis backup"
    assert env["SNAPSHOT_KEEP"] == "3"
    assert env["SNAPSHOT_READY_TIMEOUT"] == "5m"
    assert env["SNAPSHOT_RELEASE"] == RELEASE
    assert env["SNAPSHOT_APP"] == "pganalytics"
    assert env["SNAPSHOT_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_role_grants_only_what_the_script_needs(rendered):
    objs = rendered["volume-snapshots"]
    role = find(objs, "Role", NAME)
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["list"]},
        {
            "apiGroups": ["snapshot.storage.k8s.io"],
            "resources": ["volumesnapshots"],
            "verbs": ["get", "list", "watch", "create", "delete"],
        },
    ]
    binding = find(objs, "RoleBinding", NAME)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": NAME,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": NAME, "namespace": "pganalytics"}
    ]
    # Nothing cluster-wide.
    assert not by_kind(objs, "ClusterRole") and not by_kind(objs, "ClusterRoleBinding")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_only_the_snapshot_pod_gets_an_api_token(rendered, name):
    """Every pod has automountServiceAccountToken false (test_invariants); the snapshot pod is
    the one that projects a token, of its own ServiceAccount."""
    for obj in rendered[name]:
        tmpl = pod_template(obj)
        if tmpl is None:
            continue
        projected = [
            src
            for v in tmpl["spec"].get("volumes", [])
            for src in v.get("projected", {}).get("sources", [])
            if "serviceAccountToken" in src
        ]
        if component(obj) == "volume-snapshots":
            assert projected == [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}
            ]
            assert tmpl["spec"]["serviceAccountName"] == NAME
        else:
            assert not projected, f"{name}: {obj['kind']}/{obj['metadata']['name']}"


def test_configmap_holds_the_script_byte_for_byte(rendered):
    cm = find(rendered["volume-snapshots"], "ConfigMap", f"{NAME}-scripts")
    assert set(cm["data"]) == {"volume-snapshot.sh"}
    assert (cm["data"]["volume-snapshot.sh"] + "\n").encode() == SCRIPT.read_bytes()


def _checksum(chart, tmp_path) -> str:
    values = tmp_path / "on.yaml"
    values.write_text(yaml.safe_dump(ON))
    out = subprocess.run(
        [helm_binary(), "template", RELEASE, str(chart), "-n", "pganalytics", "-f", str(values)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    objs = [o for o in yaml.safe_load_all(out) if o]
    return pod_template(find(objs, "CronJob", NAME))["metadata"]["annotations"]["checksum/scripts"]


def test_pod_checksum_follows_the_script(tmp_path):
    """A changed script changes the pod template, so the next Job runs the new script."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy)
    before = _checksum(copy, tmp_path)
    script = copy / "files" / "snapshots" / "volume-snapshot.sh"
    script.write_text(script.read_text() + "# changed\n")
    assert _checksum(copy, tmp_path) != before


def test_image_honours_registry_and_digest(rendered):
    pod = pod_template(find(rendered["volume-snapshots"], "CronJob", NAME))["spec"]
    assert (
        pod["containers"][0]["image"] == "mirror.example.com/alpine/k8s:1.34.1@sha256:" + "c" * 64
    )
    default = pod_template(find(render(values=ON), "CronJob", NAME))["spec"]
    assert default["containers"][0]["image"] == "docker.io/alpine/k8s:1.34.1"


def test_every_selectable_component_has_claims_with_the_selected_labels(rendered):
    """What volume-snapshot.sh selects by (release labels + component) is what the chart's
    claims carry: the StatefulSets' volumeClaimTemplates and the chart's own PVCs."""
    objs = rendered["volume-snapshots"]
    for comp in _env(objs)["SNAPSHOT_COMPONENTS"].split():
        claims = [
            t["metadata"]
            for s in by_kind(objs, "StatefulSet")
            for t in s["spec"].get("volumeClaimTemplates", [])
        ] + [p["metadata"] for p in by_kind(objs, "PersistentVolumeClaim")]
        wanted = {**RELEASE_LABELS, "app.kubernetes.io/component": comp}
        matching = [c for c in claims if wanted.items() <= c.get("labels", {}).items()]
        assert matching, f"no claim of {comp} carries {wanted}"


def test_network_policy_opens_the_api_server_only(rendered):
    objs = rendered["volume-snapshots"]
    pols = by_kind(objs, "NetworkPolicy")
    labels = _labels(objs, "volume-snapshots")
    assert _allowed(pols, labels, "Egress", {"ip": True}, 443)
    assert _allowed(pols, labels, "Egress", {"ip": True}, 6443)
    assert not _allowed(pols, labels, "Egress", {"ip": True}, 5432)
    db = {"ns": "pganalytics", "labels": _labels(objs, "timescaledb")}
    assert not _allowed(pols, labels, "Egress", db, 5432)
    other = {"ns": "pganalytics", "labels": _labels(objs, "backend")}
    assert not _allowed(pols, labels, "Ingress", other, 8080)
    # No other pod gains the API server.
    for comp in ("backend", "grafana", "timescaledb", "backup"):
        assert not _allowed(pols, _labels(objs, comp), "Egress", {"ip": True}, 6443), comp
    narrowed = render(
        values={
            "volumeSnapshots": {
                **ON["volumeSnapshots"],
                "networkPolicy": {"apiServerCIDRs": ["10.0.0.1/32"], "apiServerPorts": [443]},
            }
        }
    )
    egress = find(narrowed, "NetworkPolicy", NAME)["spec"]["egress"]
    assert egress == [
        {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}], "ports": [{"protocol": "TCP", "port": 443}]}
    ]


def test_class_name_is_required_when_on():
    message = _refused({"volumeSnapshots": {"enabled": True}})
    assert "volumeSnapshots.className is required when volumeSnapshots.enabled is true" in message
    assert "kubectl get volumesnapshotclass" in message


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"keep": 0}, "keep"),
        ({"keep": "3"}, "keep"),
        ({"components": ["timescaledb", "backend"]}, "components"),
        ({"components": []}, "components"),
        ({"readyTimeout": "10 minutes"}, "readyTimeout"),
        ({"readyTimeout": "10m\n"}, "readyTimeout"),
        ({"className": "Snap_Class"}, "className"),
        ({"image": {"tag": "latest"}}, "image"),
        ({"networkPolicy": {"apiServerPorts": [0]}}, "networkPolicy"),
        ({"schedulle": "0 1 * * *"}, "schedulle"),
    ],
)
def test_schema_refuses_bad_values(override, key):
    message = _refused({"volumeSnapshots": {**ON["volumeSnapshots"], **override}})
    assert "volumeSnapshots" in message and key in message, message
