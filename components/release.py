"""The pgAnalytics release: `charts/pganalytics` through `kubernetes.helm.v4.Chart`, so
every Kubernetes object is its own resource and a preview shows object-level diffs.

Values: chart defaults < values-<stack>.yaml < target-derived < `pganalytics:chart.values`
(see components/values.py). The chart waits only for what it really needs: the namespace,
the credentials Secret, the StorageClass, schedulable nodes, and the ClusterIssuer when TLS
is on; never for the load balancer's address (Ingresses carry `pulumi.com/skipAwait`), nor
for the provider's fixed 10 s Service settle (Services too: their pods are awaited through
their workloads, see chart_transforms.SKIP_AWAIT_TYPES).

Day 2 (docs/OPERATIONS.md): every object holding data is protected on a protected stack;
StatefulSets with claims are deleted with orphan propagation; a credential rotation restarts
the pods through a pod-template annotation; a volume that grows is patched in place; values
set with `--secret` stay secret in the Chart and in every object it renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import chart_secrets, database
from components import chart_transforms as transforms
from components import values as chart_values
from components.settings import RELEASE_NAME, Settings
from components.volumes import Volume, VolumePlan


@dataclass
class ReleaseArgs:
    settings: Settings
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    # Real prerequisites only (namespace, Secret, StorageClass, nodes, issuer).
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    # `backup` values derived from the backup destination (components/backup/); may hold Outputs.
    backup_values: dict | None = None
    # `volumeSnapshots` values: the program's VolumeSnapshotClass (components/snapshots.py).
    snapshot_values: dict | None = None
    # `cloudnativepg` values derived from the backup destination: where the Cluster archives,
    # its instances' identity (components/backup/); may hold Outputs.
    cnpg_values: dict | None = None
    # credentials.version: None until a credential is rotated.
    credentials_version: str | None = None
    # What this update does to the volumes (volumes.plan).
    volumes: VolumePlan = field(default_factory=VolumePlan)


class PgAnalyticsRelease(pulumi.ComponentResource):
    """Outputs: `chart` (the v4 Chart), `values` (dict handed to the chart)."""

    def __init__(self, name: str, args: ReleaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pganalytics:release:PgAnalyticsRelease", name, None, opts)
        s = args.settings
        # What the program derives (bucket, identity, snapshot class) goes over the config.
        derived = {
            "backup": args.backup_values,
            "volumeSnapshots": args.snapshot_values,
            "cloudnativepg": args.cnpg_values,
        }
        self.values = chart_values.overlay(
            chart_values.merged_values(s), {k: v for k, v in derived.items() if v}
        )
        # Every literal extraEnv value is secret too, whatever its name (chart_secrets).
        env_paths, _ = chart_secrets.literal_env(self.values)
        secret_paths = (*s.chart_secret_paths, *env_paths)
        self.chart = k8s.helm.v4.Chart(
            "pganalytics",
            # Resolved from this file, not the working directory.
            chart=str(s.chart.path),
            name=RELEASE_NAME,
            namespace=args.namespace,
            # Leaves set with --secret reach the chart as secrets.
            values=chart_secrets.mark_values(self.values, secret_paths),
            # Fixed prefix: renaming this Pulumi resource never renames (replaces) the
            # objects the chart renders.
            resource_prefix=RELEASE_NAME,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=args.depends_on,
                # One callback per child for every step (see chart_transforms.chain).
                transforms=[transforms.chain(_transforms(args))],
            ),
        )
        self.claim_patches = [
            _grow_claim(self, args, volume, claim)
            for volume in args.volumes.patched.values()
            for claim in volume.claims
        ]
        self.register_outputs({"release": RELEASE_NAME})


def _transforms(args: ReleaseArgs) -> list:
    """The steps of the release's transform, in the order they run on each child."""
    s = args.settings
    chosen = [transforms.skip_await, transforms.orphan_on_delete]
    if s.protect:
        unprotected = args.volumes.reshaped
        if s.database.migrate_from_bundled:
            # The documented move to CloudNativePG: the bundled StatefulSet may go (its claim
            # stays), docs/BACKUP_RESTORE.md.
            unprotected = unprotected | {database.bundled_statefulset(args.settings)}
        chosen.append(transforms.protect_state(unprotected))
    if args.credentials_version:
        chosen.append(transforms.restart_on_rotation(args.credentials_version))
    _, env = chart_secrets.literal_env(chart_values.merged_values(s))
    if env:
        chosen.append(transforms.hide_literal_env(env))  # last with hide_secrets
    secrets = chart_secrets.secret_strings(s.chart.values, s.chart_secret_paths)
    if secrets:
        chosen.append(transforms.hide_secrets(secrets))  # last: see chart_transforms
    return chosen


def _grow_claim(
    parent: pulumi.Resource, args: ReleaseArgs, volume: Volume, claim: str
) -> k8s.core.v1.PersistentVolumeClaimPatch:
    """Raises the request of a claim made from a StatefulSet's volumeClaimTemplates (the
    StatefulSet controller never resizes an existing claim). Kept in later updates (the
    record marks the volume), so they show no change; retain_on_delete, so dropping it with
    the volume leaves the claim and its field owner as they are."""
    return k8s.core.v1.PersistentVolumeClaimPatch(
        f"grow-{claim}",
        metadata={
            "name": claim,
            "namespace": args.namespace,
            "annotations": {
                # The claim's request is owned by the StatefulSet controller: take it over.
                "pulumi.com/patchForce": "true",
                # A resize shows in the claim's conditions; see chart_transforms.SKIP_AWAIT_TYPES.
                transforms.SKIP_AWAIT_ANNOTATION: "true",
            },
        },
        spec={"resources": {"requests": {"storage": volume.size}}},
        opts=pulumi.ResourceOptions(
            parent=parent, provider=args.provider, retain_on_delete=True, protect=False
        ),
    )
