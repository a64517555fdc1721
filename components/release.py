"""The pgAnalytics release: `charts/pganalytics` through `kubernetes.helm.v4.Chart`, so
every Kubernetes object is its own resource and a preview shows object-level diffs.

Values: chart defaults < values-<stack>.yaml < target-derived < `pganalytics:chart.values`
(see components/values.py). The chart waits only for what it really needs: the namespace,
the credentials Secret, the StorageClass, schedulable nodes, and the ClusterIssuer when TLS
is on; never for the load balancer's address (Ingresses carry `pulumi.com/skipAwait`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import values as chart_values
from components.backup.base import merge_backup_values
from components.settings import RELEASE_NAME, Settings

STATEFUL_KINDS = (
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:core/v1:PersistentVolumeClaim",
)


def protect_database(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """Transform that protects the database StatefulSet and any PVC the chart renders: a
    `pulumi destroy` or a replacing change must not take the data with it."""
    if args.type_ in STATEFUL_KINDS and "timescaledb" in args.name:
        return pulumi.ResourceTransformResult(
            props=args.props,
            opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(protect=True)),
        )
    return None


INGRESS_TYPE = "kubernetes:networking.k8s.io/v1:Ingress"
SKIP_AWAIT = "pulumi.com/skipAwait"


def skip_ingress_await(
    args: pulumi.ResourceTransformArgs,
) -> pulumi.ResourceTransformResult | None:
    """Transform that stops Pulumi waiting for an Ingress's `.status.loadBalancer`: only an
    ingress controller fills it, and with controller `none`, on kind, or behind a controller
    without a LoadBalancer nothing ever does, so `pulumi up` would fail after its timeout."""
    if args.type_ != INGRESS_TYPE:
        return None
    props = dict(args.props)
    metadata = dict(props.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), SKIP_AWAIT: "true"}
    props["metadata"] = metadata
    return pulumi.ResourceTransformResult(props=props, opts=args.opts)


@dataclass
class ReleaseArgs:
    settings: Settings
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    # Real prerequisites only (namespace, Secret, StorageClass, nodes, issuer).
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    # `backup` values derived from the backup destination (components/backup/); may hold Outputs.
    backup_values: dict | None = None


class PgAnalyticsRelease(pulumi.ComponentResource):
    """Outputs: `chart` (the v4 Chart), `values` (dict handed to the chart)."""

    def __init__(self, name: str, args: ReleaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pganalytics:release:PgAnalyticsRelease", name, None, opts)
        s = args.settings
        self.values = merge_backup_values(chart_values.merged_values(s), args.backup_values)
        self.chart = k8s.helm.v4.Chart(
            "pganalytics",
            # Resolved from this file, not the working directory.
            chart=str(s.chart.path),
            name=RELEASE_NAME,
            namespace=args.namespace,
            values=self.values,
            # Fixed prefix: renaming this Pulumi resource never renames (replaces) the
            # objects the chart renders.
            resource_prefix=RELEASE_NAME,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=args.depends_on,
                transforms=[skip_ingress_await, *([protect_database] if s.protect else [])],
            ),
        )
        self.register_outputs({"release": RELEASE_NAME})
