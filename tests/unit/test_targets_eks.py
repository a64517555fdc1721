"""Day 2 on EKS under mocks: what a `kubernetesVersion` bump, a node change, an admin list
and a different deployer plan (tests/unit/plan.py), and the settings behind autoscaling,
NetworkPolicy enforcement and the control-plane zones."""

from __future__ import annotations

import itertools
import json

import pytest

from tests.unit.harness import by_type, one, run_program, stack_config
from tests.unit.plan import changes, cloud_run, depends_on, ok, plan, property_source

CLUSTER = ("aws:eks/cluster:Cluster", "cluster")
NODES = ("aws:eks/nodeGroup:NodeGroup", "node-group")
ADDON = "aws:eks/addon:Addon"
ADDONS = ("vpc-cni", "kube-proxy", "coredns", "pod-identity-agent", "ebs-csi-driver")
AUTOSCALER = ("kubernetes:helm.sh/v3:Release", "cluster-autoscaler")
VERSIONS_TOKEN = "aws:eks/getClusterVersions:getClusterVersions"
ALL_STANDARD = {
    "clusterVersions": [
        {"clusterVersion": v, "versionStatus": "STANDARD_SUPPORT", "clusterType": "eks"}
        for v in ("1.33", "1.34", "1.35")
    ]
}


def eks(version: str | None = "1.34", stack: str = "prod", invokes=None, **fields) -> dict:
    """A run of `stack` on aws (see plan.cloud_run)."""
    return cloud_run(
        "aws",
        version,
        stack,
        {VERSIONS_TOKEN: ALL_STANDARD} if invokes is None else invokes,
        **fields,
    )


@pytest.fixture(scope="module")
def versions():
    return [ok(eks(v)) for v in ("1.33", "1.34", "1.35")]


def test_two_version_bumps_update_control_plane_then_nodes_then_addons(versions):
    for before, after in itertools.pairwise(versions):
        new = after["resources"]
        minor = next(r for r in new if (r["type"], r["name"]) == CLUSTER)["inputs"]["version"]
        steps = changes(plan(before, after))
        # Updates only: nothing is replaced, created or deleted by a version bump.
        assert {s.op for s in steps.values()} == {"update"}, steps
        assert steps[CLUSTER].changed == {"version"}
        assert steps[NODES].changed == {"version", "releaseVersion"}
        for addon in ADDONS:
            assert steps[(ADDON, addon)].changed == {"addonVersion"}, addon
        assert steps[AUTOSCALER].changed == {"values.image.tag"}
        assert set(steps) == {CLUSTER, NODES, AUTOSCALER} | {(ADDON, a) for a in ADDONS}

        # The nodes take the version the control plane reports, on the matching AMI.
        nodes = one(after, *NODES)["inputs"]
        assert nodes["version"] == minor
        assert nodes["releaseVersion"].startswith(f"{minor}.")
        assert property_source(after, NODES, "version") == ["aws:eks/cluster:Cluster::cluster"]
        ssm = [c for c in after["invokes"] if c["token"] == "aws:ssm/getParameter:getParameter"]
        assert ssm[0]["args"]["name"] == (
            f"/aws/service/eks/optimized-ami/{minor}/amazon-linux-2023/x86_64/standard/"
            "recommended/release_version"
        )
        # Addon versions are resolved for the cluster's version, newest first.
        asked = [
            c["args"]
            for c in after["invokes"]
            if c["token"] == "aws:eks/getAddonVersion:getAddonVersion"
        ]
        assert {a["addonName"] for a in asked} == {
            "vpc-cni",
            "kube-proxy",
            "coredns",
            "eks-pod-identity-agent",
            "aws-ebs-csi-driver",
        }
        assert all(a["kubernetesVersion"] == minor and a["mostRecent"] for a in asked)

        # Order: control plane -> nodes -> addons.
        assert depends_on(after, NODES, CLUSTER)
        for addon in ADDONS:
            assert depends_on(after, (ADDON, addon), NODES), addon
        assert depends_on(after, AUTOSCALER, NODES)


@pytest.mark.parametrize(
    ("field", "value", "changed"),
    [
        ("machineType", "m6i.2xlarge", {"instanceTypes.0"}),
        ("diskSizeGb", 200, {"diskSize"}),
        ("spot", True, {"capacityType"}),
    ],
)
def test_node_change_creates_the_new_group_before_deleting_the_old(field, value, changed):
    before = ok(eks())
    after = ok(eks(**{f"nodePool__{field}": value}))
    steps = changes(plan(before, after))
    assert set(steps) == {NODES}, steps
    step = steps[NODES]
    assert step.op == "replace" and step.changed == changed
    # Create-before-delete, and the provider names the group: the two never collide.
    assert step.create_before_delete and not step.collides
    group = one(after, *NODES)
    assert "nodeGroupName" not in group["inputs"] and "nodeGroupNamePrefix" not in group["inputs"]
    assert group["inputs"]["updateConfig"] == {"maxUnavailable": 1}


def test_scaling_bounds_change_in_place():
    before = ok(eks())
    after = ok(eks(**{"nodePool__maxSize": 12}))
    steps = changes(plan(before, after))
    assert {k: s.op for k, s in steps.items()} == {NODES: "update"}
    assert steps[NODES].changed == {"scalingConfig.maxSize"}


def test_cluster_autoscaler_scales_the_node_group_within_its_bounds():
    result = ok(eks())
    release = one(result, *AUTOSCALER)["inputs"]
    assert release["chart"] == "cluster-autoscaler" and release["version"]
    assert release["repositoryOpts"]["repo"] == "https://kubernetes.github.io/autoscaler"
    values = release["values"]
    assert values["autoDiscovery"]["clusterName"] == "pganalytics-prod"
    assert values["awsRegion"] == "eu-west-1"
    assert values["image"]["tag"] == "v1.34.0"
    # The node group's own min/max are the bounds the autoscaler discovers.
    scaling = one(result, *NODES)["inputs"]["scalingConfig"]
    assert (scaling["minSize"], scaling["maxSize"]) == (3, 9)
    assert "scalingConfig.desiredSize" in one(result, *NODES)["ignoreChanges"]

    # AWS access through Pod Identity, for exactly the chart's service account.
    association = one(
        result, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "autoscaler-identity"
    )
    assert association["inputs"]["namespace"] == "kube-system"
    assert association["inputs"]["serviceAccount"] == values["rbac"]["serviceAccount"]["name"]
    # Other associations exist (the backup job's): none of them gets the autoscaler's role.
    role_arn = association["inputs"]["roleArn"]
    assert [
        a["name"]
        for a in by_type(result, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a["inputs"]["roleArn"] == role_arn
    ] == ["autoscaler-identity"]
    trust = json.loads(
        one(result, "aws:iam/role:Role", "autoscaler-role")["inputs"]["assumeRolePolicy"]
    )
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    autoscaler_policy = one(result, "aws:iam/rolePolicy:RolePolicy", "autoscaler-policy")
    assert autoscaler_policy["propertyDependencies"]["role"] == [
        "aws:iam/role:Role::autoscaler-role"
    ]
    policy = json.loads(autoscaler_policy["inputs"]["policy"])
    scale = next(s for s in policy["Statement"] if "autoscaling:SetDesiredCapacity" in s["Action"])
    assert scale["Condition"] == {
        "StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/pganalytics-prod": "owned"}
    }
    assert "aws:eks/addon:Addon::pod-identity-agent" in association["dependencies"]


def test_vpc_cni_enforces_network_policy():
    result = ok(eks())
    cni = one(result, ADDON, "vpc-cni")["inputs"]
    assert json.loads(cni["configurationValues"]) == {"enableNetworkPolicy": "true"}
    assert cni["resolveConflictsOnCreate"] == "OVERWRITE"
    # The chart waits for the CNI that enforces its NetworkPolicies.
    chart = one(result, "kubernetes:helm.sh/v4:Chart")
    assert "aws:eks/addon:Addon::vpc-cni" in chart["dependencies"]


ADMINS = [
    "arn:aws:iam::123456789012:role/ci-deploy",
    "arn:aws:iam::123456789012:role/break-glass",
]
OTHER_CALLER = {
    "aws:iam/getSessionContext:getSessionContext": {
        "arn": "arn:aws:sts::123456789012:assumed-role/Laptop/me",
        "issuerArn": "arn:aws:iam::123456789012:role/Laptop",
        "issuerId": "AROALAPTOP",
        "issuerName": "Laptop",
        "sessionName": "me",
    },
    VERSIONS_TOKEN: ALL_STANDARD,
}


def _admin_run(invokes=None):
    config = stack_config("prod", "aws")
    config["pganalytics:clusterAdmins"] = {"aws": ADMINS}
    return ok(run_program("prod", config, invokes=invokes or {VERSIONS_TOKEN: ALL_STANDARD}))


def test_configured_admins_are_the_same_whoever_runs_up():
    from_ci, from_laptop = _admin_run(), _admin_run(OTHER_CALLER)
    entries = by_type(from_ci, "aws:eks/accessEntry:AccessEntry")
    assert sorted(e["inputs"]["principalArn"] for e in entries) == sorted(ADMINS)
    assert all(e["name"].startswith("admin-") for e in entries)
    policies = by_type(from_ci, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert {p["inputs"]["policyArn"] for p in policies} == {
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    }
    assert changes(plan(from_ci, from_laptop)) == {}
    # The Kubernetes provider waits for the admin policies it authenticates through.
    provider = one(from_ci, "pulumi:providers:kubernetes")
    assert {
        f"aws:eks/accessPolicyAssociation:AccessPolicyAssociation::{p['name']}" for p in policies
    } <= set(provider["dependencies"])


def test_without_admins_the_first_deployer_keeps_access():
    first, other = ok(eks()), ok(eks(invokes=OTHER_CALLER))
    entry = one(first, "aws:eks/accessEntry:AccessEntry", "deployer-access")
    assert entry["inputs"]["principalArn"] == "arn:aws:iam::123456789012:role/Deployer"
    assert "principalArn" in entry["ignoreChanges"]
    # Another identity's `up` plans nothing for the entry (no lock-out, no flip-flop).
    assert changes(plan(first, other)) == {}


def test_control_plane_zones_exclude_unsupported_ones_and_too_many_zones_is_an_error():
    result = ok(eks())
    zones = [
        c["args"]
        for c in result["invokes"]
        if c["token"] == "aws:index/getAvailabilityZones:getAvailabilityZones"
    ]
    assert zones and set(zones[0]["excludeZoneIds"]) >= {"use1-az3", "usw1-az2", "cac1-az3"}
    assert zones[0]["filters"] == [{"name": "opt-in-status", "values": ["opt-in-not-required"]}]
    private = sorted(
        (s for s in by_type(result, "aws:ec2/subnet:Subnet") if s["name"].startswith("private")),
        key=lambda s: s["name"],
    )
    assert [s["inputs"]["availabilityZone"] for s in private] == [
        "eu-west-1a",
        "eu-west-1b",
        "eu-west-1c",
    ]

    bad = eks(**{"network__zoneCount": 4})
    assert bad["error_type"] == "ConfigError"
    assert "pganalytics:network.zoneCount 4 exceeds the 3 zones of eu-west-1" in bad["error"]
    assert "pulumi config set --path pganalytics:network.zoneCount 3" in bad["error"]


def test_nodes_wait_for_nat_and_routes():
    result = ok(eks())
    deps = set(one(result, *NODES)["dependencies"])
    assert {f"aws:ec2/natGateway:NatGateway::nat-{i}" for i in range(3)} <= deps
    assert {
        f"aws:ec2/routeTableAssociation:RouteTableAssociation::private-{i}" for i in range(3)
    } <= deps


def test_version_outside_standard_support_is_refused_at_preview():
    result = eks("1.32", invokes={})  # the mocked region lists 1.32 in extended support
    assert result["error_type"] == "ConfigError"
    assert "pganalytics:kubernetesVersion 1.32 is extended support on EKS" in result["error"]
    assert "pulumi config set pganalytics:kubernetesVersion 1.34" in result["error"]
    unknown = eks("1.36", invokes={})
    assert "1.36 is not offered" in unknown["error"]


def test_version_check_without_credentials_says_what_to_do():
    result = eks(
        "1.34",
        invokes={VERSIONS_TOKEN: {"__error__": "no valid credential sources found"}},
    )
    assert result["error_type"] == "CloudCheckError"
    assert "could not read the EKS versions" in result["error"]
    assert "no valid credential sources found" in result["error"]
    assert "fix: give the preview AWS credentials" in result["error"]


def test_storage_class_is_not_a_second_default():
    result = ok(eks())
    sc = one(result, "kubernetes:storage.k8s.io/v1:StorageClass")
    assert sc["inputs"]["metadata"]["annotations"] == {}
    # EKS marks no class as default (1.30+): nothing to demote, even with makeDefault.
    made_default = ok(eks(**{"storage__makeDefault": True}))
    assert by_type(made_default, "kubernetes:storage.k8s.io/v1:StorageClassPatch") == []


def test_the_new_default_machine_type_rolls_the_nodes_unless_the_old_one_is_set():
    """docs/UPGRADING.md: a stack created under the old default (m6i.large) that never set the
    key gets a new node group for the new default (m6i.xlarge), created before the old one is
    deleted; setting m6i.large keeps the group as it is."""
    before = ok(eks(nodePool__machineType="m6i.large"))
    step = changes(plan(before, ok(eks())))[NODES]
    assert step.op == "replace" and step.changed == {"instanceTypes.0"}
    assert step.create_before_delete and not step.collides
    assert changes(plan(before, ok(eks(nodePool__machineType="m6i.large")))) == {}
