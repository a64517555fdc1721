"""Day 2 on GKE under mocks: a two-step version bump, node changes, the version/channel
check at preview, Dataplane V2, the control-plane range and the admins."""

from __future__ import annotations

import itertools

import pytest

from tests.unit.harness import by_type, one
from tests.unit.plan import changes, cloud_run, depends_on, ok, plan, property_source

CLUSTER = ("gcp:container/cluster:Cluster", "cluster")
POOL = ("gcp:container/nodePool:NodePool", "node-pool")
ENGINE = "gcp:container/getEngineVersions:getEngineVersions"


def gke(version: str | None = "1.34", stack: str = "prod", invokes=None, **fields) -> dict:
    """A run of `stack` on gcp (see plan.cloud_run)."""
    return cloud_run("gcp", version, stack, invokes or {}, **fields)


@pytest.fixture(scope="module")
def versions():
    # RAPID offers 1.35 in the mocked location; STABLE (the prod stack's channel) does not.
    return [ok(gke(v, cluster__releaseChannel="RAPID")) for v in ("1.33", "1.34", "1.35")]


def test_two_version_bumps_update_the_master_then_the_pool(versions):
    for before, after in itertools.pairwise(versions):
        steps = changes(plan(before, after))
        assert {k: s.op for k, s in steps.items()} == {CLUSTER: "update", POOL: "update"}
        assert steps[CLUSTER].changed == {"minMasterVersion"}
        assert steps[POOL].changed == {"version"}
        wanted = one(after, *CLUSTER)["inputs"]["minMasterVersion"]
        # The pool takes the version the master reports, after the master.
        assert one(after, *POOL)["inputs"]["version"].startswith(f"{wanted}.")
        assert property_source(after, POOL, "version") == ["gcp:container/cluster:Cluster::cluster"]
        assert depends_on(after, POOL, CLUSTER)
    # Surge: one node added before one is taken away, never the whole pool at once.
    assert one(versions[-1], *POOL)["inputs"]["upgradeSettings"] == {
        "strategy": "SURGE",
        "maxSurge": 1,
        "maxUnavailable": 0,
    }


@pytest.mark.parametrize(
    ("field", "value", "op", "changed"),
    [
        # In place: GKE migrates the nodes with the pool's surge settings.
        ("machineType", "e2-standard-8", "update", {"nodeConfig.machineType"}),
        ("diskSizeGb", 200, "update", {"nodeConfig.diskSizeGb"}),
        # Spot cannot change in place: a new pool first, then the old one goes.
        ("spot", True, "replace", {"nodeConfig.spot"}),
    ],
)
def test_node_change_is_a_surge_update_or_create_before_delete(field, value, op, changed):
    before = ok(gke())
    after = ok(gke(**{f"nodePool__{field}": value}))
    steps = changes(plan(before, after))
    assert set(steps) == {POOL}
    assert steps[POOL].op == op and steps[POOL].changed == changed
    if op == "replace":
        assert steps[POOL].create_before_delete and not steps[POOL].collides
    pool = one(after, *POOL)["inputs"]
    assert "name" not in pool and "namePrefix" not in pool  # the provider names the pool


def test_autoscaling_bounds_are_the_whole_pool():
    result = ok(gke())
    auto = one(result, *POOL)["inputs"]["autoscaling"]
    assert (auto["totalMinNodeCount"], auto["totalMaxNodeCount"]) == (3, 9)
    assert "initialNodeCount" in one(result, *POOL)["ignoreChanges"]


def test_dataplane_v2_enforces_network_policy():
    result = ok(gke())
    assert one(result, *CLUSTER)["inputs"]["datapathProvider"] == "ADVANCED_DATAPATH"


def test_version_not_in_the_channel_is_refused_at_preview():
    result = gke("1.35")  # prod: STABLE, whose newest is 1.34 in the mocked location
    assert result["error_type"] == "ConfigError"
    assert result["resources"] == [] or all(
        r["type"].startswith(("pulumi:providers:", "pganalytics:")) for r in result["resources"]
    )
    message = result["error"]
    assert "pganalytics:kubernetesVersion 1.35 is not in the STABLE channel yet" in message
    assert "newest there: 1.34.1-gke.1000" in message
    assert "pulumi config set pganalytics:kubernetesVersion 1.34" in message
    assert "pulumi config set --path pganalytics:cluster.releaseChannel RAPID" in message
    calls = [c for c in result["invokes"] if c["token"] == ENGINE]
    assert calls[0]["args"] == {"location": "europe-west1", "project": "pganalytics-test"}


def test_exact_version_must_be_offered():
    assert gke("1.34.1")["error"] is None  # 1.34.1-gke.1000 is offered
    result = gke("1.34.0")
    assert "1.34.0 is not a version GKE offers in europe-west1" in result["error"]


def test_version_check_without_credentials_says_what_to_do():
    result = gke(invokes={ENGINE: {"__error__": "could not find default credentials"}})
    assert result["error_type"] == "CloudCheckError"
    assert "could not read the GKE versions of europe-west1" in result["error"]
    assert "gcloud auth application-default login" in result["error"]


def test_master_cidr_is_configurable_and_checked():
    result = ok(gke(cluster__masterCidr="172.16.8.0/28"))
    private = one(result, *CLUSTER)["inputs"]["privateClusterConfig"]
    assert private["masterIpv4CidrBlock"] == "172.16.8.0/28"
    for bad, words in (
        ("172.16.8.0/24", "must be an IPv4 /28"),
        ("8.8.8.0/28", "must be a private (RFC 1918) range"),
        ("10.20.0.16/28", "overlaps network.cidr (10.20.0.16/28 and 10.20.0.0/16)"),
    ):
        failed = gke(cluster__masterCidr=bad)
        assert failed["error_type"] == "ConfigError"
        assert f"pganalytics:cluster.masterCidr {words}" in failed["error"], failed["error"]
        assert (
            "pulumi config set --path pganalytics:cluster.masterCidr 172.16.0.32/28"
            in (failed["error"])
        )


def test_admins_get_container_admin_the_same_whoever_runs_up():
    members = [
        "group:platform-admins@example.com",
        "serviceAccount:ci@proj.iam.gserviceaccount.com",
    ]
    result = ok(gke(clusterAdmins__gcp=members))
    bindings = [
        b
        for b in by_type(result, "gcp:projects/iAMMember:IAMMember")
        if b["name"].startswith("admin-")
    ]
    assert sorted(b["inputs"]["member"] for b in bindings) == sorted(members)
    assert {b["inputs"]["role"] for b in bindings} == {"roles/container.admin"}
    # Removing one member removes only its binding (names follow the member, not the order).
    fewer = ok(gke(clusterAdmins__gcp=members[1:]))
    steps = changes(plan(result, fewer))
    assert [s.op for s in steps.values()] == ["delete"]


def test_bad_admin_principal_is_a_config_error():
    result = gke(clusterAdmins__gcp=["platform-admins@example.com"])
    assert result["error_type"] == "ConfigError"
    assert (
        "pganalytics:clusterAdmins.gcp[0] is not user:, group: or serviceAccount:<email>"
        in (result["error"])
    )


def test_make_default_demotes_the_gke_default_class():
    assert by_type(ok(gke()), "kubernetes:storage.k8s.io/v1:StorageClassPatch") == []
    result = ok(gke(storage__makeDefault=True))
    patch = one(result, "kubernetes:storage.k8s.io/v1:StorageClassPatch")["inputs"]["metadata"]
    assert patch["name"] == "standard-rwo"
    assert patch["annotations"]["storageclass.kubernetes.io/is-default-class"] == "false"
    sc = one(result, "kubernetes:storage.k8s.io/v1:StorageClass")["inputs"]["metadata"]
    assert sc["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
