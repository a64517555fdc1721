"""The EKS node groups: one managed node group per zone on a launch template (IMDSv2 only, hop
limit 1, encrypted gp3 root volume), the AMI release pinned in state, bounds split over the
zones, and a size that follows the live group (what the Cluster Autoscaler set).

Why one group per zone: an EBS volume lives in one zone, and a pod bound to it can only run
there. The Cluster Autoscaler scales a node group as a whole; a group spanning three zones
adds its next node in whatever zone the Auto Scaling group balances to, so a pending pod whose
volume is in another zone can wait for ever. With one group per zone the autoscaler picks the
group of the pod's zone, and `balance-similar-node-groups` keeps the zones even otherwise
(Cluster Autoscaler FAQ, "Common notes and gotchas": zonal volumes need a node group per zone).
"""

from __future__ import annotations

import re

import pulumi
import pulumi_aws as aws

from components.previous import PreviousState
from components.settings import Settings
from components.targets.base import cloud_lookup, zone_shares
from components.targets.eks.network import AWS_CREDENTIALS_HINT

ARM_AMI, X86_AMI = "AL2023_ARM_64_STANDARD", "AL2023_x86_64_STANDARD"
# Families with the same vCPU and memory at each size (large: 2 vCPU and 8 / 4 / 16 GiB),
# per series and architecture: Spot draws from all of them.
SIBLING_FAMILIES = {
    "m": ("m6i", "m6a", "m5", "m5a", "m7i"),
    "c": ("c6i", "c6a", "c5", "c5a", "c7i"),
    "r": ("r6i", "r6a", "r5", "r5a", "r7i"),
    "t": ("t3", "t3a"),
    "m-arm": ("m6g", "m7g", "m8g"),
    "c-arm": ("c6g", "c7g", "c8g"),
    "r-arm": ("r6g", "r7g", "r8g"),
}
SPOT_ALTERNATIVES = 3
NODE_POOL_LABEL = {"pganalytics.io/pool": "default"}
# The root device of the EKS-optimized AL2023 AMIs.
ROOT_DEVICE = "/dev/xvda"


def node_group_key(index: int) -> str:
    """Resource name of the node group of the index-th zone (also its key in the record)."""
    return f"node-group-{index}"


def ami_type(instance_type: str) -> str:
    """Graviton families (m7g, c6gn, t4g, ...) need the ARM image."""
    family = instance_type.split(".")[0]
    return ARM_AMI if re.fullmatch(r"[a-z]+\d+[a-z]*g[a-z]*(-[a-z]+)?", family) else X86_AMI


def ami_release_parameter(version: str, ami: str) -> str:
    """The SSM parameter that names the newest EKS-optimized AL2023 release for `version`."""
    arch = "arm64" if ami == ARM_AMI else "x86_64"
    return (
        f"/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/{arch}/standard/"
        "recommended/release_version"
    )


def instance_types(machine_type: str, spot: bool, extra: list[str]) -> list[str]:
    """The group's instance types: machineType first, then the configured extras; on Spot
    without extras, the same size of sibling families of the same architecture, so one type's
    shortage does not stop scaling (Spot best practice: diversify instance types)."""
    if extra:
        return [machine_type, *extra]
    family, _, size = machine_type.partition(".")
    if not spot or "metal" in size:
        return [machine_type]
    series = family[0] + ("-arm" if ami_type(machine_type) == ARM_AMI else "")
    siblings = [f"{f}.{size}" for f in SIBLING_FAMILIES.get(series, ()) if f != family]
    return [machine_type, *siblings[:SPOT_ALTERNATIVES]]


def launch_template(settings: Settings, opts: pulumi.ResourceOptions) -> aws.ec2.LaunchTemplate:
    """What EKS cannot set on a node group itself: IMDSv2 only with a hop limit of 1, so a pod
    (one network hop away from the node) cannot reach the node's instance credentials, and an
    encrypted gp3 root volume. A change makes a new template version: a rolling update of the
    groups, not a replacement."""
    return aws.ec2.LaunchTemplate(
        "node-template",
        description=f"EKS nodes of {settings.cluster_name}",
        metadata_options={
            "http_endpoint": "enabled",
            "http_tokens": "required",
            "http_put_response_hop_limit": 1,
        },
        block_device_mappings=[
            {
                "device_name": ROOT_DEVICE,
                "ebs": {
                    "volume_size": settings.node_pool.disk_size_gb,
                    "volume_type": "gp3",
                    "encrypted": "true",
                    "delete_on_termination": "true",
                },
            }
        ],
        update_default_version=True,
        opts=opts,
    )


def bounds(settings: Settings, zones: int) -> list[tuple[int, int, int]]:
    """(min, max, initial size) of each zone's group: the whole-pool settings split over the
    zones (remainders to the first zones), so the groups add up to the pool's bounds."""
    np = settings.node_pool
    return list(
        zip(
            zone_shares(np.min_size, zones),
            zone_shares(np.max_size, zones),
            zone_shares(np.desired_size, zones),
            strict=True,
        )
    )


def _live_group(cluster: str, name: str, invoke: pulumi.InvokeOptions):
    return cloud_lookup(
        f"EKS node group {name}",
        lambda: aws.eks.get_node_group(cluster_name=cluster, node_group_name=name, opts=invoke),
        AWS_CREDENTIALS_HINT,
    )


def live_sizes(
    settings: Settings, previous: PreviousState, zones: int, invoke: pulumi.InvokeOptions
) -> list[int | None]:
    """The desired size each zone's group has now (None: the group does not exist yet), read
    from EKS at preview and at `up`. The groups the last update recorded are read by name.
    A stack whose last update predates the record ran one group over every zone (named by the
    provider): its live size is found by the pool label and split over the new groups, so the
    move to one group per zone keeps the capacity the autoscaler had reached."""
    if previous.target != "aws":
        return [None] * zones
    cluster = settings.cluster_name
    recorded = previous.cluster.get("nodePools")
    if isinstance(recorded, dict):
        sizes: list[int | None] = []
        for i in range(zones):
            name = recorded.get(node_group_key(i))
            group = _live_group(cluster, name, invoke) if name else None
            sizes.append(group.scaling_configs[0].desired_size if group else None)
        return sizes
    names = cloud_lookup(
        f"the node groups of EKS cluster {cluster}",
        lambda: aws.eks.get_node_groups(cluster_name=cluster, opts=invoke),
        AWS_CREDENTIALS_HINT,
    ).names
    total = 0
    for name in sorted(names or []):
        group = _live_group(cluster, name, invoke)
        if (group.labels or {}).items() >= NODE_POOL_LABEL.items():
            total += group.scaling_configs[0].desired_size
    return list(zone_shares(total, zones)) if total else [None] * zones
