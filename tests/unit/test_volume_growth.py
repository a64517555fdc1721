"""Volume growth under mocks: what the previous update recorded against the new config. A
larger size plans a claim patch (StatefulSet claims) or an in-place PVC update (chart PVCs);
a smaller size or another StorageClass is a config error before any resource."""

from __future__ import annotations

import re

import pytest

from components import volumes
from components.previous import PreviousState, from_outputs
from tests.unit.harness import by_type, run_program, stack_config
from tests.unit.rendered import chart_children, settings_for

PATCH = "kubernetes:core/v1:PersistentVolumeClaimPatch"
CLAIM = "data-pganalytics-timescaledb-0"


def _run(stack, previous_volumes, overrides=None, target="existing", storage_class=None):
    config = stack_config(stack, target, database="bundled")
    if overrides:
        config["pganalytics:chart"] = {**config.get("pganalytics:chart", {}), "values": overrides}
    if storage_class is not None:
        config["pganalytics:storage"] = {
            **config.get("pganalytics:storage", {}),
            "className": storage_class,
        }
    previous = {"namespace": "pganalytics"}
    if previous_volumes is not None:
        previous["volumes"] = previous_volumes
    return run_program(stack, config, previous_outputs=previous)


@pytest.mark.parametrize(
    ("text", "size"),
    [("20Gi", 20 * 2**30), ("500Mi", 500 * 2**20), ("1.5Ti", int(1.5 * 2**40)), ("100G", 10**11)],
)
def test_quantities(text, size):
    assert volumes.quantity_bytes(text) == size


@pytest.mark.parametrize("text", ["", "20 Gi", "20gb", "-1Gi", "20Gi\n"])
def test_not_quantities(text):
    assert volumes.quantity_bytes(text) is None


def test_volumes_match_the_rendered_claims():
    settings = settings_for(
        "enterprise",
        {"redis": {"enabled": True}, "grafana": {"persistence": {"enabled": True}}},
        database="bundled",
    )
    found = volumes.chart_volumes(settings)
    rendered = {}
    for child in chart_children(settings):
        obj = child.props
        if obj["kind"] == "PersistentVolumeClaim":
            rendered[obj["metadata"]["name"]] = obj["spec"]["resources"]["requests"]["storage"]
        for template in obj.get("spec", {}).get("volumeClaimTemplates", []) or []:
            claim = f"{template['metadata']['name']}-{obj['metadata']['name']}-0"
            rendered[claim] = template["spec"]["resources"]["requests"]["storage"]
    planned = {claim: v.size for v in found.values() for claim in v.claims}
    assert planned == rendered
    assert set(found) == {"timescaledb", "redis", "grafana", "backup"}


def test_first_deployment_records_the_sizes():
    result = _run("prod", None)
    assert result["error"] is None, result["error"]
    assert result["outputs"]["volumes"]["value"] == {
        # The backup PVC: values-prod.yaml turns backups on.
        "backup": {"size": "50Gi", "storageClass": ""},
        "grafana": {"size": "10Gi", "storageClass": ""},
        "timescaledb": {"size": "100Gi", "storageClass": ""},
    }
    assert by_type(result, PATCH) == []


def test_growing_the_database_patches_its_claim():
    live = {
        "timescaledb": {"size": "100Gi", "storageClass": ""},
        "grafana": {"size": "10Gi", "storageClass": ""},
    }
    result = _run("prod", live, {"timescaledb": {"persistence": {"size": "200Gi"}}})
    assert result["error"] is None, result["error"]
    patches = by_type(result, PATCH)
    assert [p["name"] for p in patches] == [f"grow-{CLAIM}"]
    patch = patches[0]
    assert patch["inputs"]["metadata"]["name"] == CLAIM
    assert patch["inputs"]["metadata"]["namespace"] == "pganalytics"
    assert patch["inputs"]["metadata"]["annotations"] == {
        "pulumi.com/patchForce": "true",
        "pulumi.com/skipAwait": "true",
    }
    assert patch["inputs"]["spec"] == {"resources": {"requests": {"storage": "200Gi"}}}
    # Dropping the patch in a later update must leave the claim alone.
    assert patch["retainOnDelete"] and not patch["protect"]
    assert patch["parent"].endswith("PgAnalyticsRelease::pganalytics")
    assert result["outputs"]["volumes"]["value"]["timescaledb"]["size"] == "200Gi"


def test_a_grown_volume_keeps_its_claim_patch_in_later_updates():
    """The record marks a grown volume, so the next update registers the same patch again
    (no change) instead of dropping it (a `delete` in every later preview)."""
    live = {"timescaledb": {"size": "100Gi", "storageClass": ""}}
    grown = _run("prod", live, {"timescaledb": {"persistence": {"size": "200Gi"}}})
    assert grown["error"] is None, grown["error"]
    recorded = grown["outputs"]["volumes"]["value"]
    assert recorded["timescaledb"] == {
        "size": "200Gi",
        "storageClass": "",
        volumes.PATCHED: "true",
    }
    assert volumes.PATCHED not in recorded["grafana"], "a chart PVC carries no claim patch"

    settings = settings_for(
        "prod", {"timescaledb": {"persistence": {"size": "200Gi"}}}, database="bundled"
    )
    plan = volumes.plan(settings, from_outputs({"volumes": recorded}))
    assert plan.grow == {} and plan.reshaped == frozenset(), "nothing grows a second time"
    assert set(plan.patched) == {"timescaledb"}
    again = _run("prod", recorded, {"timescaledb": {"persistence": {"size": "200Gi"}}})
    assert again["error"] is None, again["error"]
    [patch] = by_type(again, PATCH)
    assert patch["name"] == f"grow-{CLAIM}"
    assert patch["inputs"]["spec"] == {"resources": {"requests": {"storage": "200Gi"}}}
    assert again["outputs"]["volumes"]["value"]["timescaledb"][volumes.PATCHED] == "true"


def test_a_volume_never_grown_has_no_claim_patch():
    live = {"timescaledb": {"size": "100Gi", "storageClass": ""}}
    result = _run("prod", live)
    assert result["error"] is None, result["error"]
    assert by_type(result, PATCH) == []
    assert volumes.PATCHED not in result["outputs"]["volumes"]["value"]["timescaledb"]


def test_a_failed_claim_patch_keeps_the_previous_record():
    """The next run must see the old size again and retry the growth."""
    live = {"timescaledb": {"size": "100Gi", "storageClass": ""}}
    config = stack_config("prod", "existing", database="bundled")
    config["pganalytics:chart"] = {
        **config["pganalytics:chart"],
        "values": {"timescaledb": {"persistence": {"size": "200Gi"}}},
    }
    failed = run_program("prod", config, previous_outputs={"volumes": live}, fail_types=(PATCH,))
    assert failed["error"] is not None
    assert "volumes" not in failed["outputs"]
    assert failed["outputs"]["credentialRotation"]["value"] == {}


def test_growing_a_chart_pvc_needs_no_patch():
    """Grafana's PVC is a chart object: the provider plans `resources.requests` as an update."""
    live = {
        "timescaledb": {"size": "100Gi", "storageClass": ""},
        "grafana": {"size": "10Gi", "storageClass": ""},
    }
    settings = settings_for(
        "prod", {"grafana": {"persistence": {"size": "20Gi"}}}, database="bundled"
    )
    plan = volumes.plan(settings, from_outputs({"volumes": live}))
    assert set(plan.grow) == {"grafana"}
    assert plan.reshaped == frozenset(), "a chart PVC grows without touching a StatefulSet"
    result = _run("prod", live, {"grafana": {"persistence": {"size": "20Gi"}}})
    assert result["error"] is None, result["error"]
    assert by_type(result, PATCH) == []


def test_same_size_in_other_units_is_no_change():
    live = {"timescaledb": {"size": "102400Mi", "storageClass": ""}}
    settings = settings_for("prod", database="bundled")
    assert volumes.plan(settings, PreviousState(volumes=live)) == volumes.VolumePlan()


def test_growing_the_database_reshapes_only_its_statefulset():
    live = {"timescaledb": {"size": "100Gi", "storageClass": ""}}
    settings = settings_for(
        "prod", {"timescaledb": {"persistence": {"size": "150Gi"}}}, database="bundled"
    )
    plan = volumes.plan(settings, PreviousState(volumes=live))
    assert set(plan.grow) == {"timescaledb"}
    assert plan.reshaped == {"pganalytics-timescaledb"}


def test_turning_a_statefulset_volume_off_keeps_its_claim():
    """Step of the shrink procedure: the claim templates go away, so the StatefulSet is
    replaced (orphaning its pod, unprotected for that update); the claim itself stays."""
    live = {"timescaledb": {"size": "100Gi", "storageClass": ""}}
    settings = settings_for(
        "prod", {"timescaledb": {"persistence": {"enabled": False}}}, database="bundled"
    )
    plan = volumes.plan(settings, PreviousState(volumes=live))
    assert plan.grow == {}
    assert plan.reshaped == {"pganalytics-timescaledb"}
    result = _run("prod", live, {"timescaledb": {"persistence": {"enabled": False}}})
    assert result["error"] is None, result["error"]
    assert "timescaledb" not in result["outputs"]["volumes"]["value"]
    assert by_type(result, PATCH) == []


def test_unknown_previous_sizes_plan_nothing():
    """A stack last updated before sizes were recorded: nothing to compare with."""
    settings = settings_for(
        "prod", {"timescaledb": {"persistence": {"size": "1Ti"}}}, database="bundled"
    )
    current = volumes.chart_volumes(settings)
    assert volumes.changes(settings, PreviousState(volumes=None), current) == ({}, [])


def test_shrinking_is_a_config_error_with_the_procedure():
    live = {"timescaledb": {"size": "200Gi", "storageClass": ""}}
    result = _run("prod", live)
    assert result["error_type"] == "ConfigError"
    assert result["resources"] == []
    assert re.search(
        r"pganalytics:chart\.values\.timescaledb\.persistence\.size is 100Gi but the live "
        r"timescaledb volume is 200Gi, and a PersistentVolumeClaim cannot shrink; fix: "
        r"pulumi config set --path pganalytics:chart\.values\.timescaledb\.persistence\.size "
        r'"200Gi" to keep the live volume, or to move the data to a new volume: back up, set '
        r"pganalytics:chart\.values\.timescaledb\.persistence\.enabled false and update, "
        r"delete the old claim, .* restore \(see docs/OPERATIONS\.md#volumes\)",
        result["error"],
    ), result["error"]


def test_changing_the_storage_class_of_a_live_volume_is_refused():
    live = {"timescaledb": {"size": "100Gi", "storageClass": "local-path"}}
    result = _run("prod", live, storage_class="fast-ssd")
    assert result["error_type"] == "ConfigError"
    assert result["resources"] == []
    assert re.search(
        r"pganalytics:storage\.className changes the StorageClass of the live timescaledb "
        r"volume from 'local-path' to 'fast-ssd', which would replace the volume and lose its "
        r'data; fix: pulumi config set --path pganalytics:storage\.className "local-path"',
        result["error"],
    ), result["error"]


def test_a_per_volume_class_override_is_named_in_the_error():
    live = {"grafana": {"size": "10Gi", "storageClass": ""}}
    result = _run("prod", live, {"grafana": {"persistence": {"storageClass": "standard"}}})
    assert result["error_type"] == "ConfigError"
    assert "pganalytics:chart.values.grafana.persistence.storageClass changes" in result["error"]
    assert (
        'fix: pulumi config set --path pganalytics:chart.values.grafana.persistence.storageClass ""'
        in result["error"]
    )


def test_a_size_set_with_secret_keeps_the_record_secret():
    config = stack_config("prod", "existing", database="bundled")
    config["pganalytics:chart"] = {
        **config["pganalytics:chart"],
        "valuesFile": "values-prod.yaml",
        "values": {"timescaledb": {"persistence": {"size": "123Gi"}}},
    }
    result = run_program("nofile", config, secret_keys=("pganalytics:chart",))
    assert result["error"] is None, result["error"]
    assert result["outputs"]["volumes"]["secret"] is True
    assert result["outputs"]["volumes"]["value"]["timescaledb"]["size"] == "123Gi"
    assert _run("prod", None)["outputs"]["volumes"]["secret"] is False
