"""The replacement table of tests/unit/plan.py names real inputs of the pinned SDKs, so a typo
there cannot make a replacement look like an update."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from tests.unit.plan import FORCE_NEW, NAME_INPUT

CLASSES = {
    "aws:eks/cluster:Cluster": "pulumi_aws.eks.Cluster",
    "aws:eks/nodeGroup:NodeGroup": "pulumi_aws.eks.NodeGroup",
    "aws:eks/addon:Addon": "pulumi_aws.eks.Addon",
    "aws:eks/accessEntry:AccessEntry": "pulumi_aws.eks.AccessEntry",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": (
        "pulumi_aws.eks.AccessPolicyAssociation"
    ),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": (
        "pulumi_aws.eks.PodIdentityAssociation"
    ),
    "gcp:container/cluster:Cluster": "pulumi_gcp.container.Cluster",
    "gcp:container/nodePool:NodePool": "pulumi_gcp.container.NodePool",
    "gcp:projects/iAMMember:IAMMember": "pulumi_gcp.projects.IAMMember",
    "azure-native:containerservice:ManagedCluster": (
        "pulumi_azure_native.containerservice.ManagedCluster"
    ),
    "azure-native:containerservice:AgentPool": "pulumi_azure_native.containerservice.AgentPool",
    "azure-native:authorization:RoleAssignment": "pulumi_azure_native.authorization.RoleAssignment",
    "pulumi:providers:kubernetes": "pulumi_kubernetes.Provider",
    "kubernetes:storage.k8s.io/v1:StorageClass": "pulumi_kubernetes.storage.v1.StorageClass",
}


def _snake(name: str) -> str:
    """osDiskSizeGB -> os_disk_size_gb, vnetSubnetID -> vnet_subnet_id, minSize -> min_size."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _inputs(type_: str) -> set[str]:
    module, _, cls = CLASSES[type_].rpartition(".")
    klass = getattr(importlib.import_module(module), cls)
    params = set(inspect.signature(klass._internal_init).parameters)
    # azure-native suffixes inputs that clash with Python keywords / Resource attributes.
    return params | {p.rstrip("_") for p in params}


@pytest.mark.parametrize("type_", sorted(set(FORCE_NEW) | set(NAME_INPUT)))
def test_replacement_table_names_real_inputs(type_):
    params = _inputs(type_)
    paths = FORCE_NEW.get(type_, set()) | ({NAME_INPUT[type_]} if type_ in NAME_INPUT else set())
    unknown = {p for p in paths if _snake(p.split(".")[0]) not in params}
    assert not unknown, f"{type_}: {unknown} are not inputs of {CLASSES[type_]}"
