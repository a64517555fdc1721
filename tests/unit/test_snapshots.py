"""The program's side of the chart's volumeSnapshots under Pulumi mocks (tests/unit/harness.py):
per cloud a VolumeSnapshotClass of the cloud's CSI driver (on EKS after the snapshot-controller
add-on), its name in the chart values, protection on protected stacks; a class the config names
is used as it is; `existing` must name one (a ConfigError before any resource); snapshots off
add nothing. Mocks prove what the program asks for, not what a cloud's CSI driver does."""

from __future__ import annotations

import pytest

from tests.unit.harness import by_type, matrix_case, one, run_program, stack_config, unsecret
from tests.unit.plan import depends_on, ok

CLASS = ("kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotClass", "volume-snapshot-class")
COMPONENT = ("pganalytics:snapshots:SnapshotClass", "volume-snapshots")
CHART = ("kubernetes:helm.sh/v4:Chart", "pganalytics")
ADDON = ("aws:eks/addon:Addon", "snapshot-controller")
DRIVERS = {
    "aws": ("ebs.csi.aws.com", {}),
    "gcp": ("pd.csi.storage.gke.io", {}),
    "azure": ("disk.csi.azure.com", {"incremental": "true"}),
}


def _run(stack: str, target: str, snapshots: dict | None) -> dict:
    config = stack_config(stack, target)
    if snapshots is not None:
        chart = dict(config.get("pganalytics:chart") or {})
        values = dict(chart.get("values") or {})
        chart["values"] = {**values, "volumeSnapshots": snapshots}
        config["pganalytics:chart"] = chart
    return run_program(stack, config)


def _chart_snapshot_values(result: dict) -> dict:
    """volumeSnapshots as the Chart gets it, less the image (values-prod.yaml pins its digest)."""
    values = unsecret(one(result, *CHART)["inputs"]["values"]).get("volumeSnapshots", {})
    return {k: v for k, v in values.items() if k != "image"}


@pytest.fixture(scope="module")
def on_prod():
    return {t: ok(_run("prod", t, {"enabled": True})) for t in DRIVERS}


@pytest.mark.parametrize("target", sorted(DRIVERS))
def test_each_cloud_gets_a_class_of_its_csi_driver(on_prod, target):
    result = on_prod[target]
    driver, parameters = DRIVERS[target]
    snapshot_class = one(result, *CLASS)
    inputs = snapshot_class["inputs"]
    assert inputs["driver"] == driver
    assert inputs["parameters"] == parameters
    assert inputs["deletionPolicy"] == "Delete"
    assert inputs["metadata"]["name"] == "pganalytics-snapshots"
    assert snapshot_class["parent"].endswith("::volume-snapshots")
    # Created on the cluster the release goes to, and the release waits for it.
    assert snapshot_class["provider"] == one(result, *CHART)["provider"]
    assert depends_on(result, CHART, CLASS)
    assert _chart_snapshot_values(result) == {"enabled": True, "className": "pganalytics-snapshots"}


@pytest.mark.parametrize("target", sorted(DRIVERS))
def test_the_class_is_protected_on_protected_stacks_only(on_prod, target):
    assert one(on_prod[target], *CLASS)["protect"] is True
    dev = ok(_run("dev", target, {"enabled": True}))
    assert one(dev, *CLASS)["protect"] is False


def test_eks_installs_the_snapshot_controller_add_on_first(on_prod):
    result = on_prod["aws"]
    addon = one(result, *ADDON)
    assert addon["inputs"]["addonName"] == "snapshot-controller"
    assert depends_on(result, ADDON, ("aws:eks/addon:Addon", "ebs-csi-driver"))
    assert depends_on(result, CLASS, ADDON)


@pytest.mark.parametrize("target", sorted(DRIVERS))
def test_a_named_class_is_used_as_it_is(target):
    result = ok(_run("prod", target, {"enabled": True, "className": "team-snapclass"}))
    assert not by_type(result, CLASS[0])
    assert _chart_snapshot_values(result) == {"enabled": True, "className": "team-snapclass"}
    # EKS still needs the CRDs and the controller for any class.
    assert bool(by_type(result, ADDON[0]) and one(result, *ADDON)) == (target == "aws")


def test_existing_without_a_class_is_refused_before_any_resource():
    result = _run("dev", "existing", {"enabled": True})
    assert result["error_type"] == "ConfigError", result["error"]
    message = result["error"]
    assert "pganalytics:chart.values.volumeSnapshots.className is required on target existing" in (
        message
    )
    assert "pulumi config set --path pganalytics:chart.values.volumeSnapshots.className" in message
    assert "kubectl get volumesnapshotclass" in message
    assert result["resources"] == []


def test_existing_with_a_class_passes_it_to_the_chart():
    result = ok(_run("dev", "existing", {"enabled": True, "className": "csi-hostpath-snapclass"}))
    assert not by_type(result, CLASS[0])
    assert _chart_snapshot_values(result) == {
        "enabled": True,
        "className": "csi-hostpath-snapclass",
    }


@pytest.mark.parametrize("stack", ["dev", "prod", "enterprise"])
@pytest.mark.parametrize("target", ["aws", "gcp", "azure", "existing"])
def test_snapshots_off_add_nothing(stack, target):
    """The shipped stacks leave snapshots off: no class, no add-on, no chart value."""
    result = matrix_case(stack, target)
    assert result["error"] is None, result["error"]
    assert not by_type(result, CLASS[0]) and not by_type(result, COMPONENT[0])
    assert not [r for r in by_type(result, ADDON[0]) if r["name"] == ADDON[1]]
    assert "className" not in _chart_snapshot_values(result)
