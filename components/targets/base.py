"""The interface every cluster target presents, so platform and release code never asks
which cloud it runs on."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.previous import PreviousState
from components.settings import Settings

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


class CloudCheckError(pulumi.RunError):
    """A preview-time check against the cloud failed: the message says what to change, or
    how to give the program the credentials the check needs."""


def cloud_lookup(what: str, call, credentials_hint: str):
    """Runs a data-source call at preview; a failure (usually missing credentials) becomes a
    message that says what to do instead of a provider stack trace."""
    try:
        return call()
    except Exception as exc:  # the engine raises plain Exceptions for failed invokes
        raise CloudCheckError(
            f"could not read {what} to check the configuration: {exc}\n"
            f"  fix: {credentials_hint}, then run the preview again"
        ) from exc


def short_hash(*parts: str) -> str:
    """A stable 8-hex-digit tag of `parts` (resource names that must be stable per value)."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:8]


def minor(version: str) -> tuple[int, int]:
    """(1, 34) of '1.34', '1.34.2' or '1.34.2-gke.1000'."""
    major, minor_, *_ = version.split("-")[0].split(".")
    return int(major), int(minor_)


def exec_kubeconfig(name: str, server: str, ca_data: str, exec_spec: dict) -> str:
    """A one-cluster kubeconfig whose user authenticates through an exec credential plugin
    (short-lived tokens from the cloud CLI, nothing long-lived in the document)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": name,
                    "cluster": {"server": server, "certificate-authority-data": ca_data},
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "users": [
                {
                    "name": name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            **exec_spec,
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        }
    )


def zone_shares(total: int, zones: int) -> list[int]:
    """`total` split over `zones` as evenly as possible, the remainder to the first zones: the
    per-zone share of a whole-pool bound. Monotonic: a ≤ b gives a ≤ b in every zone."""
    base, extra = divmod(total, zones)
    return [base + (1 if i < extra else 0) for i in range(zones)]


def scaled_size(live: int | None, low: int, high: int, initial: int) -> int:
    """The size to send with a pool's bounds: the live size (what the autoscaler set) moved
    just inside [low, high], or `initial` for a pool that does not exist yet. Raising the
    minimum grows the pool to it; any other bounds change keeps the live size, so an update
    never shrinks a pool the autoscaler grew (only a maximum below the live size does)."""
    return initial if live is None else min(max(live, low), high)


@dataclass
class TargetArgs:
    """Inputs of every cluster target."""

    # The validated settings.
    settings: Settings
    # What the last update deployed (node pools to read live, versions pinned in state).
    previous: PreviousState = field(default_factory=PreviousState)


@dataclass
class StorageClassSpec:
    """The cloud-specific part of the StorageClass a target creates."""

    provisioner: str
    parameters: dict[str, str]
    extra: dict = field(default_factory=dict)


@dataclass
class SnapshotClassSpec:
    """The cloud-specific part of the VolumeSnapshotClass the program creates when the chart's
    volumeSnapshots are on (components/snapshots.py): the cloud's CSI driver, its parameters,
    and what must exist first (the snapshot CRDs and controller)."""

    driver: str
    parameters: dict[str, str] = field(default_factory=dict)
    dependencies: list[pulumi.Resource] = field(default_factory=list)


class ClusterTarget(pulumi.ComponentResource):
    """Base class of the cluster targets. Subclasses set the attributes below, then call
    `_outputs()`."""

    # The Kubernetes provider for the cluster.
    provider: k8s.Provider
    # A kubeconfig for the cluster (secret).
    kubeconfig: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    # The class the chart uses ("" = the cluster's default).
    storage_class_name: str
    # The StorageClass resource, or None when the cluster's own class is used.
    storage_class: k8s.storage.v1.StorageClass | None
    # The IngressClass of the bundled controller.
    ingress_class: str
    # Service annotations the ingress controller's LoadBalancer needs on this cloud.
    lb_annotations: dict[str, str]
    # What a workload needs before it can schedule (node pools, CSI driver), so Helm
    # releases wait for them and nothing else.
    workload_dependencies: list[pulumi.Resource]
    # The cloud's CSI snapshot driver, or None where the program knows none (existing).
    snapshot_class: SnapshotClassSpec | None
    # What the next update must know of this one (node pool names, pinned versions), exported
    # as the `clusterRecord` stack output; {} where there is nothing to remember.
    record: dict[str, Any]

    def __init__(self, type_: str, name: str, args: TargetArgs, opts=None):
        super().__init__(type_, name, None, opts)
        self.settings = args.settings
        self.previous = args.previous
        self.record = {}
        self.storage_class = None
        self.storage_class_name = args.settings.storage.class_name
        self.ingress_class = args.settings.ingress.class_name
        self.lb_annotations = {}
        self.workload_dependencies = []
        self.snapshot_class = None

    def _kept_suffix(self, name: str, length: int = 6) -> pulumi.Output[str]:
        """A random lowercase suffix kept for the life of the stack (protected like the data),
        for names a cloud wants globally unique or never frees (Key Vaults, KMS key rings)."""
        return random.RandomString(
            name,
            length=length,
            special=False,
            upper=False,
            opts=pulumi.ResourceOptions(parent=self, protect=self.settings.protect),
        ).result

    def _create_storage_class(
        self, spec: StorageClassSpec, cloud_default: str = ""
    ) -> k8s.storage.v1.StorageClass:
        """The program's StorageClass. The chart names it explicitly, so it is the cluster
        default only on request (storage.makeDefault), and then the class the cloud marks
        as default (`cloud_default`) is demoted, so the cluster never has two defaults."""
        s = self.settings
        annotations = {DEFAULT_CLASS_ANNOTATION: "true"} if s.storage.make_default else {}
        if s.storage.make_default and cloud_default:
            k8s.storage.v1.StorageClassPatch(
                "cloud-default-class",
                metadata={
                    "name": cloud_default,
                    # The cloud's addon manager owns the object; take just this annotation.
                    "annotations": {
                        DEFAULT_CLASS_ANNOTATION: "false",
                        "pulumi.com/patchForce": "true",
                    },
                },
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
            )
        self.storage_class = k8s.storage.v1.StorageClass(
            "storage-class",
            metadata={"name": s.storage.class_name, "annotations": annotations},
            provisioner=spec.provisioner,
            parameters=spec.parameters,
            reclaim_policy=s.storage.reclaim_policy,
            # Bind where the pod lands, so a zonal disk is created in the pod's zone.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=self.provider,
                protect=s.protect,
                # The name is fixed (PVCs refer to it), and parameters are immutable.
                delete_before_replace=True,
                # Volumes outlive the class: deleting the stack keeps the class on prod.
                retain_on_delete=s.protect,
            ),
        )
        return self.storage_class

    def _outputs(self) -> None:
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "storageClassName": self.storage_class_name,
                "ingressClass": self.ingress_class,
            }
        )


def k8s_provider(
    parent: pulumi.Resource,
    kubeconfig: pulumi.Input[str] | None,
    cluster_name: pulumi.Input[str],
    context: str | None = None,
    depends_on: list[pulumi.Resource] | None = None,
) -> k8s.Provider:
    """A Kubernetes provider with a stable identity: a refreshed token in the kubeconfig must
    not look like a new cluster (which would replace every Kubernetes object)."""
    return k8s.Provider(
        "k8s",
        kubeconfig=kubeconfig,
        context=context or None,
        cluster_identifier=cluster_name,
        enable_server_side_apply=True,
        # A credential rotation updates the credentials Secret in place; without this the
        # provider replaces any Secret whose data changes (and a protected one cannot be).
        enable_secret_mutable=True,
        delete_unreachable=False,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on or []),
    )


def merged_tags(settings: Settings) -> dict[str, str]:
    return {
        "app": "pganalytics",
        "stack": settings.stack,
        "managed-by": "pulumi",
        **settings.tags,
    }
