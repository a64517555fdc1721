"""The VolumeSnapshotClass of the chart's scheduled CSI snapshots (chart: volumeSnapshots).

When `volumeSnapshots.enabled` is on after every values layer and no `className` is named, the
program creates a class for the cloud's CSI driver (the target's `snapshot_class`: EBS, PD or
Azure Disk) and passes its name to the chart. A named class is used as it is; on `existing`
naming one is required (the settings refuse the config otherwise, before any resource).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes import _utilities as k8s_utilities

from components.settings import Settings
from components.targets.base import ClusterTarget, SnapshotClassSpec

API_VERSION = "snapshot.storage.k8s.io/v1"
CLASS_NAME = "pganalytics-snapshots"


class _VolumeSnapshotClass(pulumi.CustomResource):
    """A VolumeSnapshotClass object. Its fields sit at the top level (driver, deletionPolicy,
    parameters), which `k8s.apiextensions.CustomResource` (spec only) cannot express; the
    Kubernetes provider takes any kind through the same `kubernetes:<apiVersion>:<kind>` type."""

    def __init__(self, name: str, props: dict, opts: pulumi.ResourceOptions):
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(version=k8s_utilities.get_version())
        )
        kind = "VolumeSnapshotClass"
        body = {"apiVersion": API_VERSION, "kind": kind, **props}
        super().__init__(f"kubernetes:{API_VERSION}:{kind}", name, body, opts)


@dataclass
class SnapshotClassArgs:
    spec: SnapshotClassSpec
    provider: k8s.Provider
    protect: bool = False
    name: str = CLASS_NAME
    labels: dict[str, str] = field(default_factory=dict)


class SnapshotClass(pulumi.ComponentResource):
    """Outputs: `class_name` (the name the chart's snapshots use; a str, fixed)."""

    def __init__(self, name: str, args: SnapshotClassArgs, opts=None):
        super().__init__("pganalytics:snapshots:SnapshotClass", name, None, opts)
        self.resource = _VolumeSnapshotClass(
            "volume-snapshot-class",
            {
                "metadata": {"name": args.name, "labels": args.labels},
                "driver": args.spec.driver,
                "parameters": args.spec.parameters,
                # The job prunes snapshots beyond volumeSnapshots.keep by deleting the
                # VolumeSnapshot; with Delete the cloud snapshot goes with it (Retain would
                # keep paying for every snapshot ever taken).
                "deletionPolicy": "Delete",
            },
            pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=args.spec.dependencies,
                protect=args.protect,
                # The name is fixed (the chart refers to it): a replacement deletes first.
                delete_before_replace=True,
            ),
        )
        # Fixed, so known at preview; the release depends on this component.
        self.class_name = args.name
        self.register_outputs({"className": self.class_name})


def build_snapshot_class(
    settings: Settings, target: ClusterTarget, opts: pulumi.ResourceOptions | None = None
) -> SnapshotClass | None:
    """The program's VolumeSnapshotClass, or None when snapshots are off, the config names a
    class, or the target knows no CSI driver (existing: the settings required a name)."""
    chart = settings.chart
    if not chart.snapshots_enabled or chart.snapshot_class_name or target.snapshot_class is None:
        return None
    args = SnapshotClassArgs(
        spec=target.snapshot_class,
        provider=target.provider,
        protect=settings.protect,
        labels={
            "app.kubernetes.io/part-of": "pganalytics",
            "app.kubernetes.io/managed-by": "pulumi",
        },
    )
    return SnapshotClass("volume-snapshots", args, opts)


def snapshot_values(snapshot_class: SnapshotClass | None) -> dict | None:
    """The `volumeSnapshots` values naming the program's class (merged over the others)."""
    if snapshot_class is None:
        return None
    return {"className": snapshot_class.class_name}
