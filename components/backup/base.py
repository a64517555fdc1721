"""What every backup destination presents to the release: chart values."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components.settings import RELEASE_NAME, Settings
from components.targets.base import ClusterTarget, merged_tags

# Path of the backups inside the bucket.
BACKUP_PREFIX = RELEASE_NAME
# Path of the CloudNativePG cluster's WAL archive and base backups (Barman Cloud plugin); the
# lifecycle rules, which expire dumps by age, leave it to barman's retention policy.
CNPG_PREFIX = "cnpg"
CHART_NAME = "pganalytics"


def chart_fullname(values: dict) -> str:
    """`pganalytics.fullname` of charts/pganalytics/templates/_helpers.tpl for the program's
    release name: the prefix of every object name."""
    override = values.get("fullnameOverride") or ""
    if override:
        return override[:40].rstrip("-")
    name = values.get("nameOverride") or CHART_NAME
    full = RELEASE_NAME if name in RELEASE_NAME else f"{RELEASE_NAME}-{name}"
    return full[:40].rstrip("-")


def backup_service_account(settings: Settings, role: str = "backup") -> str:
    """A ServiceAccount the chart renders: `<fullname>-backup` (the backup pods, which write)
    or `<fullname>-restore` (the restore Job, which only reads). Each is the only subject its
    workload identity trusts, so the names must follow name overrides."""
    from components import values as chart_values

    return f"{chart_fullname(chart_values.merged_values(settings, include_defaults=True))}-{role}"


@dataclass
class BackupArgs:
    settings: Settings
    target: ClusterTarget
    namespace: pulumi.Input[str]


class BackupDestination(pulumi.ComponentResource):
    """Subclasses set `chart_values` (a dict for the chart's `backup` key; leaves may be
    Outputs), `bucket_name` and, with a CloudNativePG database, `cnpg_values` (for the chart's
    `cloudnativepg` key: where the cluster archives and the identity of its instances), then
    call `_outputs()`."""

    chart_values: dict
    bucket_name: pulumi.Output[str]
    cnpg_values: dict | None = None

    def __init__(self, type_: str, name: str, args: BackupArgs, opts=None):
        super().__init__(type_, name, None, opts)
        self.settings = args.settings
        self.target = args.target
        self.namespace = args.namespace
        self.service_account_name = backup_service_account(args.settings)
        self.restore_service_account_name = backup_service_account(args.settings, "restore")
        # The CloudNativePG instances' ServiceAccount, which the operator names after the Cluster.
        self.cnpg_service_account = args.settings.database.cluster_name
        self.cnpg = args.settings.database.cloudnativepg

    def _suffix(self, length: int) -> pulumi.Output[str]:
        """A random, lowercase suffix for globally unique names; kept for the life of the stack
        (a new suffix would mean a new, empty bucket)."""
        suffix = random.RandomString(
            "backup-bucket-suffix",
            length=length,
            special=False,
            upper=False,
            opts=pulumi.ResourceOptions(parent=self, protect=self.settings.protect),
        )
        return suffix.result

    def _generated_name(self, max_length: int = 63) -> pulumi.Output[str]:
        """`<clusterName>-backups-<8 random>` (bucket names are global)."""
        base = f"{self.settings.cluster_name}-backups"[: max_length - 9].rstrip("-.")
        return self._suffix(8).apply(lambda s: f"{base}-{s}")

    def _options(
        self, provider: pulumi.ProviderResource
    ) -> tuple[pulumi.ResourceOptions, pulumi.ResourceOptions]:
        """Options of this destination's children on `provider`: (plain, stateful). Stateful
        ones hold backups: protected and retained when the stack is destroyed on prod."""
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        keep = pulumi.ResourceOptions(
            protect=self.settings.protect, retain_on_delete=self.settings.protect
        )
        return child, pulumi.ResourceOptions.merge(child, keep)

    def _tags(self) -> dict[str, str]:
        """The stack's tags (labels on GCP), marked as backups."""
        return {**merged_tags(self.settings), "purpose": "backups"}

    @staticmethod
    def _cnpg_backup(destination: pulumi.Input[str], provider: str, **extra) -> dict:
        """`cloudnativepg.backup` values: archive to `destination`, retention from
        backup.retentionDays."""
        return {"enabled": True, "destinationPath": destination, "provider": provider, **extra}

    def _outputs(self) -> None:
        self.register_outputs({"bucketName": self.bucket_name})
