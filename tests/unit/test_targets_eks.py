"""Day 2 on EKS under mocks: what a `kubernetesVersion` bump, a node change, a bounds change, an
admin list and a different deployer plan (tests/unit/plan.py), what the provider then sends
and whether EKS accepts it (plan.refusal), and the settings behind autoscaling, NetworkPolicy
enforcement, node hardening, Pod Identity trust and the control-plane zones."""

from __future__ import annotations

import itertools
import json

import pytest

from tests.unit.harness import by_type, one, run_program, stack_config
from tests.unit.plan import (
    changes,
    cloud_run,
    depends_on,
    ok,
    plan,
    property_source,
    provider_answer,
    refusal,
    sent_inputs,
)
from tests.unit.runner import ssm_parameter

CLUSTER = ("aws:eks/cluster:Cluster", "cluster")
GROUP = "aws:eks/nodeGroup:NodeGroup"
GROUPS = [(GROUP, f"node-group-{i}") for i in range(3)]
TEMPLATE = ("aws:ec2/launchTemplate:LaunchTemplate", "node-template")
ADDON = "aws:eks/addon:Addon"
BEFORE_NODES = ("vpc-cni", "pod-identity-agent")
AFTER_NODES = ("kube-proxy", "coredns", "ebs-csi-driver")
ADDONS = BEFORE_NODES + AFTER_NODES
AUTOSCALER = ("kubernetes:helm.sh/v3:Release", "cluster-autoscaler")
ROLE = "aws:iam/role:Role"
VERSIONS_TOKEN = "aws:eks/getClusterVersions:getClusterVersions"
NODE_GROUP_TOKEN = "aws:eks/getNodeGroup:getNodeGroup"
SSM_TOKEN = "aws:ssm/getParameter:getParameter"
ADDON_TOKEN = "aws:eks/getAddonVersion:getAddonVersion"
ALL_STANDARD = {
    "clusterVersions": [
        {"clusterVersion": v, "versionStatus": "STANDARD_SUPPORT", "clusterType": "eks"}
        for v in ("1.33", "1.34", "1.35")
    ]
}
CLUSTER_ARN = "arn:aws:eks:eu-west-1:123456789012:cluster/pganalytics-prod"


def eks(version: str | None = "1.34", stack: str = "prod", invokes=None, **fields) -> dict:
    """A run of `stack` on aws (see plan.cloud_run)."""
    return cloud_run(
        "aws",
        version,
        stack,
        {VERSIONS_TOKEN: ALL_STANDARD, **(invokes or {})},
        **fields,
    )


def outputs(result: dict) -> dict:
    """A run's stack outputs as the next run reads them back (readStackOutputs)."""
    return {k: v["value"] for k, v in result["outputs"].items()}


def live_groups(desired: list[int], low=1, high=3) -> dict:
    """EKS's answer for the recorded groups: each zone's live desired size."""
    return {
        "__by__": "nodeGroupName",
        **{
            f"node-group-{i}-mock1234": {
                "clusterName": "pganalytics-prod",
                "nodeGroupName": f"node-group-{i}-mock1234",
                "scalingConfigs": [{"minSize": low, "maxSize": high, "desiredSize": n}],
                "labels": {"pganalytics.io/pool": "default"},
                "id": f"g{i}",
            }
            for i, n in enumerate(desired)
        },
    }


def day2(base: dict, live: list[int], **fields) -> dict:
    """The next `up` of a deployed prod stack whose groups now run `live` nodes."""
    config = stack_config("prod", "aws")
    config["pganalytics:kubernetesVersion"] = "1.34"
    for path, value in fields.items():
        head, sub = path.split("__")
        config[f"pganalytics:{head}"] = {**config.get(f"pganalytics:{head}", {}), sub: value}
    invokes = {VERSIONS_TOKEN: ALL_STANDARD, NODE_GROUP_TOKEN: live_groups(live)}
    return ok(run_program("prod", config, previous_outputs=outputs(base), invokes=invokes))


def desired(result: dict) -> list[int]:
    return [int(one(result, *g)["inputs"]["scalingConfig"]["desiredSize"]) for g in GROUPS]


@pytest.fixture(scope="module")
def base():
    return ok(eks())


@pytest.fixture(scope="module")
def versions():
    return [ok(eks(v)) for v in ("1.33", "1.34", "1.35")]


def test_two_version_bumps_update_control_plane_then_cni_then_nodes_then_addons(versions):
    for before, after in itertools.pairwise(versions):
        minor = one(after, *CLUSTER)["inputs"]["version"]
        steps = changes(plan(before, after))
        # Updates only: nothing is replaced, created or deleted by a version bump.
        assert {s.op for s in steps.values()} == {"update"}, steps
        assert steps[CLUSTER].changed == {"version"}
        for group in GROUPS:
            assert steps[group].changed == {"version", "releaseVersion"}
        for addon in ADDONS:
            assert steps[(ADDON, addon)].changed == {"addonVersion"}, addon
        assert steps[AUTOSCALER].changed == {"values.image.tag"}
        assert set(steps) == {CLUSTER, AUTOSCALER, *GROUPS} | {(ADDON, a) for a in ADDONS}

        # The nodes take the version the control plane reports, on the matching AMI.
        for group in GROUPS:
            nodes = one(after, *group)["inputs"]
            assert nodes["version"] == minor
            assert nodes["releaseVersion"].startswith(f"{minor}.")
            assert property_source(after, group, "version") == ["aws:eks/cluster:Cluster::cluster"]
        ssm = [c for c in after["invokes"] if c["token"] == SSM_TOKEN]
        assert ssm[0]["args"]["name"] == (
            f"/aws/service/eks/optimized-ami/{minor}/amazon-linux-2023/x86_64/standard/"
            "recommended/release_version"
        )
        asked = [c["args"] for c in after["invokes"] if c["token"] == ADDON_TOKEN]
        assert {a["addonName"] for a in asked} == {
            "vpc-cni",
            "kube-proxy",
            "coredns",
            "eks-pod-identity-agent",
            "aws-ebs-csi-driver",
        }
        assert all(a["kubernetesVersion"] == minor and a["mostRecent"] for a in asked)

        # Order: control plane -> CNI and Pod Identity agent -> nodes -> other add-ons.
        for addon in BEFORE_NODES:
            assert depends_on(after, (ADDON, addon), CLUSTER)
        for group in GROUPS:
            assert depends_on(after, group, CLUSTER)
            for addon in BEFORE_NODES:
                assert depends_on(after, group, (ADDON, addon)), (group, addon)
            for addon in AFTER_NODES:
                assert depends_on(after, (ADDON, addon), group), (addon, group)
            assert depends_on(after, AUTOSCALER, group)


def test_one_node_group_per_zone_whose_bounds_add_up_to_the_pool(base):
    """Item 11: a zonal EBS volume pins its pod to one zone, and the Cluster Autoscaler grows a
    node group, not a zone; one group per zone lets it add a node where the pod's volume is
    (Cluster Autoscaler FAQ: node groups spanning zones and zonal volumes)."""
    subnets = []
    for group in GROUPS:
        inputs = one(base, *group)["inputs"]
        assert len(inputs["subnetIds"]) == 1
        subnets.append(inputs["subnetIds"][0])
        assert inputs["labels"] == {"pganalytics.io/pool": "default"}
    private = {
        s["name"]: s["inputs"]["availabilityZone"]
        for s in by_type(base, "aws:ec2/subnet:Subnet")
        if s["name"].startswith("private")
    }
    # One subnet, so one zone, per group: each subnet id comes from another private subnet.
    for i, group in enumerate(GROUPS):
        assert property_source(base, group, "subnetIds") == [f"aws:ec2/subnet:Subnet::private-{i}"]
    assert sorted(private.values()) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    scaling = [one(base, *g)["inputs"]["scalingConfig"] for g in GROUPS]
    # prod: minSize 3, maxSize 9, desiredSize 3 for the whole pool.
    assert sum(s["minSize"] for s in scaling) == 3
    assert sum(s["maxSize"] for s in scaling) == 9
    assert sum(s["desiredSize"] for s in scaling) == 3
    # The groups are alike, so the autoscaler keeps the zones even.
    assert one(base, *AUTOSCALER)["inputs"]["values"]["extraArgs"]["balance-similar-node-groups"]
    assert by_type(base, GROUP) and len(by_type(base, GROUP)) == 3


def test_groups_are_split_unevenly_when_the_bounds_do_not_divide():
    result = ok(eks(stack="dev", version=None))  # dev: 2 zones, minSize 1, maxSize 2
    groups = sorted(by_type(result, GROUP), key=lambda g: g["name"])
    assert [g["inputs"]["scalingConfig"] for g in groups] == [
        {"minSize": 1, "maxSize": 1, "desiredSize": 1},
        {"minSize": 0, "maxSize": 1, "desiredSize": 0},
    ]
    refused = eks(stack="dev", version=None, nodePool__maxSize=1)
    assert refused["error_type"] == "ConfigError"
    assert "pganalytics:nodePool.maxSize must be at least the 2 zones on EKS" in refused["error"]


@pytest.mark.parametrize(
    ("field", "value", "changed"),
    [
        ("machineType", "m6i.2xlarge", {"instanceTypes.0"}),
        ("spot", True, {"capacityType", "instanceTypes.1", "instanceTypes.2", "instanceTypes.3"}),
    ],
)
def test_node_change_creates_the_new_groups_before_deleting_the_old(base, field, value, changed):
    after = ok(eks(**{f"nodePool__{field}": value}))
    steps = changes(plan(base, after))
    assert set(steps) == set(GROUPS), steps
    for group in GROUPS:
        step = steps[group]
        assert step.op == "replace" and step.changed == changed
        # Create-before-delete, and the provider names the group: the two never collide.
        assert step.create_before_delete and not step.collides
        inputs = one(after, *group)["inputs"]
        assert "nodeGroupName" not in inputs and "nodeGroupNamePrefix" not in inputs
        assert inputs["updateConfig"] == {"maxUnavailable": 1}


def test_disk_size_is_a_new_template_version_rolled_in_place(base):
    """A launch template change is a new template version (EC2 versions every content
    change); EKS rolls a node group onto a new version in place (UpdateNodegroupVersion)."""
    after = ok(eks(nodePool__diskSizeGb=200))
    steps = changes(plan(base, after))
    assert steps[TEMPLATE].op == "update"
    assert steps[TEMPLATE].changed == {"blockDeviceMappings.0.ebs.volumeSize"}
    for group in GROUPS:
        assert steps[group].op == "update" and steps[group].changed == {"launchTemplate.version"}
    assert set(steps) == {TEMPLATE, *GROUPS}


def test_raising_min_size_grows_the_live_groups_and_eks_accepts_it(base):
    """Item 1. The AWS provider sends the whole scaling_config; with the desired size left at
    the last `up`'s value (ignoreChanges), raising minSize above it is refused by EKS. The
    program sends the live size moved inside the new bounds instead."""
    live = [1, 2, 1]  # the autoscaler grew the pool from 3 to 4
    before = day2(base, live)
    assert desired(before) == live  # an unrelated `up` keeps the live sizes
    after = day2(base, live, nodePool__minSize=6, nodePool__desiredSize=6)
    assert desired(after) == [2, 2, 2]  # min 2 per zone: raised to it, never below live
    for group in GROUPS:
        assert plan(before, after)[group].op == "update"
        assert provider_answer(before, after, group) is None
        # What the program did before: desiredSize ignored, the stale size sent -> refused.
        stale = json.loads(json.dumps(after))
        for r in stale["resources"]:
            if (r["type"], r["name"]) == group:
                r["ignoreChanges"] = ["scalingConfig.desiredSize"]
        before_stale = json.loads(json.dumps(before))
        for r in before_stale["resources"]:
            if (r["type"], r["name"]) == group:
                r["inputs"]["scalingConfig"]["desiredSize"] = 1  # the size of the first `up`
        sent = sent_inputs(before_stale, stale, group)
        assert sent["scalingConfig"]["desiredSize"] == 1
        assert refusal(GROUP, sent, {"scalingConfig.minSize"}) == (
            "Minimum capacity 2 can't be greater than desired size 1"
        )


def test_a_max_size_change_keeps_the_live_size(base):
    """Item 1: raising maxSize must not send the stale desired size (a shrink)."""
    live = [3, 3, 2]
    before = day2(base, live)
    after = day2(base, live, nodePool__maxSize=12)
    assert desired(after) == live
    for group in GROUPS:
        assert provider_answer(before, after, group) is None
        assert plan(before, after)[group].changed == {"scalingConfig.maxSize"}
    # Only a maximum below the live size takes nodes away, down to that maximum.
    lowered = day2(base, live, nodePool__maxSize=6)
    assert desired(lowered) == [2, 2, 2]
    for group in GROUPS:
        assert provider_answer(before, lowered, group) is None


def test_first_up_of_this_version_keeps_the_single_groups_capacity():
    """Item 11 migration: the last update ran one provider-named group over every zone (no
    clusterRecord). Its live size is split over the new per-zone groups, which are created
    before the old group is deleted (a removed resource is deleted after the update)."""
    legacy = {
        "__by__": "nodeGroupName",
        "node-group-4f1c2a9": {
            "nodeGroupName": "node-group-4f1c2a9",
            "scalingConfigs": [{"minSize": 3, "maxSize": 9, "desiredSize": 7}],
            "labels": {"pganalytics.io/pool": "default"},
            "id": "legacy",
        },
    }
    config = stack_config("prod", "aws")
    result = ok(
        run_program(
            "prod",
            config,
            previous_outputs={"target": "aws", "clusterName": "pganalytics-prod"},
            invokes={
                VERSIONS_TOKEN: ALL_STANDARD,
                "aws:eks/getNodeGroups:getNodeGroups": {"names": ["node-group-4f1c2a9"]},
                NODE_GROUP_TOKEN: legacy,
            },
        )
    )
    assert desired(result) == [3, 2, 2]
    # Nothing the new groups need is the old group: it can go last.
    for group in GROUPS:
        assert not [d for d in one(result, *group)["dependencies"] if "node-group::" in d]


def test_node_image_and_addon_versions_stay_pinned_when_aws_publishes_new_ones(base):
    """Item 9. SSM's "recommended" release and `most_recent` add-ons move under a stack: the
    program records what it deployed and reads it back, so a later `up` with a newer answer
    from AWS plans nothing; an explicit bump moves only what it names."""
    newer = {
        SSM_TOKEN: ssm_parameter("recommended", "1.34.9-20260601"),
        ADDON_TOKEN: {"addonName": "any", "version": "v1.34.9-eksbuild.9", "id": "x"},
        VERSIONS_TOKEN: ALL_STANDARD,
        NODE_GROUP_TOKEN: live_groups([1, 1, 1]),
    }
    config = stack_config("prod", "aws")
    again = ok(run_program("prod", config, previous_outputs=outputs(base), invokes=newer))
    assert changes(plan(base, again)) == {}
    assert one(again, *GROUPS[0])["inputs"]["releaseVersion"] == "1.34.0-20260101"
    # The release is shown in previews: the provider marks the SSM value secret, not us.
    for group in GROUPS:
        assert one(again, *group)["secretPaths"] == []
    assert again["outputs"]["clusterRecord"]["secret"] is False

    config["pganalytics:cluster"] = {
        **config["pganalytics:cluster"],
        "nodeImageVersion": "1.34.9-20260601",
        "addonVersions": {"coredns": "v1.34.9-eksbuild.9"},
    }
    bumped = ok(run_program("prod", config, previous_outputs=outputs(base), invokes=newer))
    steps = changes(plan(base, bumped))
    assert set(steps) == {*GROUPS, (ADDON, "coredns")}
    assert {k: (s.op, s.changed) for k, s in steps.items()} == {
        **{g: ("update", {"releaseVersion"}) for g in GROUPS},
        (ADDON, "coredns"): ("update", {"addonVersion"}),
    }


def test_a_version_bump_resolves_the_versions_again(base):
    invokes = {VERSIONS_TOKEN: ALL_STANDARD, NODE_GROUP_TOKEN: live_groups([1, 1, 1])}
    config = stack_config("prod", "aws")
    config["pganalytics:kubernetesVersion"] = "1.35"
    bumped = ok(run_program("prod", config, previous_outputs=outputs(base), invokes=invokes))
    assert one(bumped, *GROUPS[0])["inputs"]["releaseVersion"] == "1.35.0-20260101"
    assert one(bumped, ADDON, "coredns")["inputs"]["addonVersion"] == "v1.35.0-eksbuild.1"


def test_a_node_image_of_another_minor_is_refused():
    result = eks(cluster__nodeImageVersion="1.33.5-20260101")
    assert result["error_type"] == "ConfigError"
    assert (
        "pganalytics:cluster.nodeImageVersion 1.33.5-20260101 is an AMI release"
        in (result["error"])
    )


def test_nodes_cannot_reach_instance_credentials_and_the_cni_has_its_own_role(base):
    """Item 14. IMDSv2 only with a hop limit of 1 (EC2 user guide, "Configure the instance
    metadata options": a container is one hop further and gets no token), the VPC CNI's
    permissions on a Pod Identity role instead of the node role."""
    template = one(base, *TEMPLATE)["inputs"]
    assert template["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }
    assert template["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
    for group in GROUPS:
        inputs = one(base, *group)["inputs"]
        assert "diskSize" not in inputs  # EKS refuses diskSize next to a launch template
        assert property_source(base, group, "launchTemplate") == [
            "aws:ec2/launchTemplate:LaunchTemplate::node-template"
        ]
    attached = {
        a["name"]
        for a in by_type(base, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a["name"].startswith("node-")
    }
    assert attached == {"node-AmazonEKSWorkerNodePolicy", "node-AmazonEC2ContainerRegistryReadOnly"}
    cni = one(base, ADDON, "vpc-cni")
    assert cni["inputs"]["podIdentityAssociations"][0]["serviceAccount"] == "aws-node"
    assert cni["propertyDependencies"]["podIdentityAssociations"] == [
        "aws:iam/role:Role::vpc-cni-role"
    ]
    assert one(base, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "vpc-cni-policy")[
        "inputs"
    ]["policyArn"].endswith(":iam::aws:policy/AmazonEKS_CNI_Policy")


def test_spot_groups_draw_from_several_instance_types():
    result = ok(eks(nodePool__spot=True))
    for group in GROUPS:
        inputs = one(result, *group)["inputs"]
        assert inputs["capacityType"] == "SPOT"
        assert inputs["instanceTypes"] == ["m6i.xlarge", "m6a.xlarge", "m5.xlarge", "m5a.xlarge"]
    arm = ok(eks(nodePool__spot=True, nodePool__machineType="m7g.xlarge"))
    assert one(arm, *GROUPS[0])["inputs"]["instanceTypes"] == [
        "m7g.xlarge",
        "m6g.xlarge",
        "m8g.xlarge",
    ]
    assert one(arm, *GROUPS[0])["inputs"]["amiType"] == "AL2023_ARM_64_STANDARD"
    chosen = ok(eks(nodePool__extraMachineTypes=["m6a.xlarge"]))
    assert one(chosen, *GROUPS[0])["inputs"]["instanceTypes"] == ["m6i.xlarge", "m6a.xlarge"]
    mixed = eks(nodePool__extraMachineTypes=["m7g.large"])
    assert (
        "pganalytics:nodePool.extraMachineTypes has m7g.large, of another CPU" in (mixed["error"])
    )


POD_IDENTITY_ROLES = {
    "ebs-csi-role": ("kube-system", "ebs-csi-controller-sa"),
    "vpc-cni-role": ("kube-system", "aws-node"),
    "autoscaler-role": ("kube-system", "cluster-autoscaler"),
    "backup-role": ("pganalytics", "pganalytics-backup"),
    "backup-restore-role": ("pganalytics", "pganalytics-restore"),
    "cnpg-role": ("pganalytics", "pganalytics-db"),  # the CloudNativePG instances (prod)
}


def test_every_pod_identity_role_trusts_only_this_clusters_service_account(base):
    """Security item 12. EKS Pod Identity documents aws:SourceAccount and aws:SourceArn (the
    cluster's ARN) on the roles it assumes, and session tags for the namespace and service
    account ("Create IAM role with trust policy required by EKS Pod Identity"). Every role
    that trusts pods.eks.amazonaws.com carries them, the backup writer's and the restore
    Job's included."""
    trusting = {}
    for role in by_type(base, ROLE):
        trust = json.loads(role["inputs"]["assumeRolePolicy"])
        statement = trust["Statement"][0]
        if statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}:
            trusting[role["name"]] = statement
    assert set(trusting) == set(POD_IDENTITY_ROLES)
    for name, statement in trusting.items():
        namespace, account = POD_IDENTITY_ROLES[name]
        assert statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]
        assert statement["Condition"] == {
            "StringEquals": {
                "aws:SourceAccount": "123456789012",
                "aws:RequestTag/kubernetes-namespace": namespace,
                "aws:RequestTag/kubernetes-service-account": account,
            },
            "ArnEquals": {"aws:SourceArn": CLUSTER_ARN},
        }, name
        assert (
            "aws:eks/cluster:Cluster::cluster"
            in one(base, ROLE, name)["propertyDependencies"]["assumeRolePolicy"]
        ), name


def test_private_endpoint_admits_the_deploy_networks(base):
    """Item 4. EKS guards the private endpoint's interfaces with the cluster security group,
    which admits only its members: the runner and VPN ranges get HTTPS (443) into it."""
    assert by_type(base, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") == []
    result = ok(
        eks(endpoint__publicAccess=False, endpoint__privateCidrs=["10.99.0.0/24", "10.1.0.0/16"])
    )
    cluster = one(result, *CLUSTER)["inputs"]["vpcConfig"]
    assert cluster["endpointPublicAccess"] is False and cluster["endpointPrivateAccess"] is True
    rules = by_type(result, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert sorted(r["inputs"]["cidrIpv4"] for r in rules) == ["10.1.0.0/16", "10.99.0.0/24"]
    for rule in rules:
        inputs = rule["inputs"]
        assert (inputs["fromPort"], inputs["toPort"], inputs["ipProtocol"]) == (443, 443, "tcp")
        assert inputs["securityGroupId"] == "sg-cluster"  # the cluster security group
    refused = eks(endpoint__publicAccess=False)
    assert (
        "pganalytics:endpoint.privateCidrs must list the networks that deploy" in (refused["error"])
    )


def test_cluster_autoscaler_scales_the_node_groups_within_their_bounds(base):
    release = one(base, *AUTOSCALER)["inputs"]
    assert release["chart"] == "cluster-autoscaler" and release["version"]
    assert release["repositoryOpts"]["repo"] == "https://kubernetes.github.io/autoscaler"
    values = release["values"]
    assert values["autoDiscovery"]["clusterName"] == "pganalytics-prod"
    assert values["awsRegion"] == "eu-west-1"
    assert values["image"]["tag"] == "v1.34.0"
    # Nothing ignores the desired size any more: it is sent from the live size (item 1).
    for group in GROUPS:
        assert one(base, *group)["ignoreChanges"] == []

    # AWS access through Pod Identity, for exactly the chart's service account.
    association = one(
        base, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "autoscaler-identity"
    )
    assert association["inputs"]["namespace"] == "kube-system"
    assert association["inputs"]["serviceAccount"] == values["rbac"]["serviceAccount"]["name"]
    role_arn = association["inputs"]["roleArn"]
    assert [
        a["name"]
        for a in by_type(base, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a["inputs"]["roleArn"] == role_arn
    ] == ["autoscaler-identity"]
    autoscaler_policy = one(base, "aws:iam/rolePolicy:RolePolicy", "autoscaler-policy")
    assert autoscaler_policy["propertyDependencies"]["role"] == [
        "aws:iam/role:Role::autoscaler-role"
    ]
    policy = json.loads(autoscaler_policy["inputs"]["policy"])
    scale = next(s for s in policy["Statement"] if "autoscaling:SetDesiredCapacity" in s["Action"])
    assert scale["Condition"] == {
        "StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/pganalytics-prod": "owned"}
    }
    assert "aws:eks/addon:Addon::pod-identity-agent" in association["dependencies"]


def test_vpc_cni_enforces_network_policy(base):
    cni = one(base, ADDON, "vpc-cni")["inputs"]
    assert json.loads(cni["configurationValues"]) == {"enableNetworkPolicy": "true"}
    assert cni["resolveConflictsOnCreate"] == "OVERWRITE"
    # The chart waits for the CNI that enforces its NetworkPolicies.
    chart = one(base, "kubernetes:helm.sh/v4:Chart")
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


def test_without_admins_the_first_deployer_keeps_access(base):
    other = ok(eks(invokes=OTHER_CALLER))
    entry = one(base, "aws:eks/accessEntry:AccessEntry", "deployer-access")
    assert entry["inputs"]["principalArn"] == "arn:aws:iam::123456789012:role/Deployer"
    assert "principalArn" in entry["ignoreChanges"]
    # Another identity's `up` plans nothing for the entry (no lock-out, no flip-flop).
    assert changes(plan(base, other)) == {}


def test_control_plane_zones_exclude_unsupported_ones_and_too_many_zones_is_an_error(base):
    zones = [
        c["args"]
        for c in base["invokes"]
        if c["token"] == "aws:index/getAvailabilityZones:getAvailabilityZones"
    ]
    assert zones and set(zones[0]["excludeZoneIds"]) >= {"use1-az3", "usw1-az2", "cac1-az3"}
    assert zones[0]["filters"] == [{"name": "opt-in-status", "values": ["opt-in-not-required"]}]
    private = sorted(
        (s for s in by_type(base, "aws:ec2/subnet:Subnet") if s["name"].startswith("private")),
        key=lambda s: s["name"],
    )
    assert [s["inputs"]["availabilityZone"] for s in private] == [
        "eu-west-1a",
        "eu-west-1b",
        "eu-west-1c",
    ]

    bad = eks(**{"network__zoneCount": 4, "nodePool__maxSize": 9})
    assert bad["error_type"] == "ConfigError"
    assert "pganalytics:network.zoneCount 4 exceeds the 3 zones of eu-west-1" in bad["error"]
    assert "pulumi config set --path pganalytics:network.zoneCount 3" in bad["error"]


def test_nodes_wait_for_nat_and_routes(base):
    for group in GROUPS:
        deps = set(one(base, *group)["dependencies"])
        assert {f"aws:ec2/natGateway:NatGateway::nat-{i}" for i in range(3)} <= deps
        assert {
            f"aws:ec2/routeTableAssociation:RouteTableAssociation::private-{i}" for i in range(3)
        } <= deps


def test_version_outside_standard_support_is_refused_at_preview():
    result = cloud_run("aws", "1.32", "prod", {})  # the mocked region: 1.32 extended support
    assert result["error_type"] == "ConfigError"
    assert "pganalytics:kubernetesVersion 1.32 is extended support on EKS" in result["error"]
    assert "pulumi config set pganalytics:kubernetesVersion 1.34" in result["error"]
    unknown = cloud_run("aws", "1.36", "prod", {})
    assert "1.36 is not offered" in unknown["error"]


def test_version_check_without_credentials_says_what_to_do():
    result = eks(invokes={VERSIONS_TOKEN: {"__error__": "no valid credential sources found"}})
    assert result["error_type"] == "CloudCheckError"
    assert "could not read the EKS versions" in result["error"]
    assert "no valid credential sources found" in result["error"]
    assert "fix: give the preview AWS credentials" in result["error"]


def test_storage_class_is_not_a_second_default(base):
    sc = one(base, "kubernetes:storage.k8s.io/v1:StorageClass")
    assert sc["inputs"]["metadata"]["annotations"] == {}
    # EKS marks no class as default (1.30+): nothing to demote, even with makeDefault.
    made_default = ok(eks(**{"storage__makeDefault": True}))
    assert by_type(made_default, "kubernetes:storage.k8s.io/v1:StorageClassPatch") == []


def test_the_new_default_machine_type_rolls_the_nodes_unless_the_old_one_is_set():
    """docs/UPGRADING.md: a stack created under the old default (m6i.large) that never set the
    key gets a new node group for the new default (m6i.xlarge), created before the old one is
    deleted; setting m6i.large keeps the group as it is."""
    before = ok(eks(nodePool__machineType="m6i.large"))
    steps = changes(plan(before, ok(eks())))
    for group in GROUPS:
        step = steps[group]
        assert step.op == "replace" and step.changed == {"instanceTypes.0"}
        assert step.create_before_delete and not step.collides
    assert changes(plan(before, ok(eks(nodePool__machineType="m6i.large")))) == {}
