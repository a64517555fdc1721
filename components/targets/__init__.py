"""Cluster targets: one module per cloud, one interface (`base.ClusterTarget`)."""

from __future__ import annotations

import pulumi

from components.previous import PreviousState
from components.settings import Settings
from components.targets.base import ClusterTarget, TargetArgs


def build_target(
    settings: Settings,
    previous: PreviousState | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> ClusterTarget:
    """The cluster target the settings select. Cloud SDKs are imported only when used.
    `previous`: what the last update deployed (live node pools to read, pinned versions)."""
    args = TargetArgs(settings=settings, previous=previous or PreviousState())
    if settings.target == "aws":
        from components.targets.eks import EksCluster

        return EksCluster("cluster", args, opts)
    if settings.target == "gcp":
        from components.targets.gke import GkeCluster

        return GkeCluster("cluster", args, opts)
    if settings.target == "azure":
        from components.targets.aks import AksCluster

        return AksCluster("cluster", args, opts)
    from components.targets.existing import ExistingCluster

    return ExistingCluster("cluster", args, opts)


__all__ = ["ClusterTarget", "TargetArgs", "build_target"]
