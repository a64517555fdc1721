"""Off-cluster backups: where the chart's backup job uploads, and the identity it uploads with.

One module per store (`aws`, `gcp`, `azure`: a bucket the program creates and a workload
identity bound to the backup ServiceAccount only; `s3compatible`: a store that exists, reached
with keys from a Secret). Each returns the chart values of `backup.destination` and friends,
which the release merges over the other values.
"""

from __future__ import annotations

import pulumi

from components import values as chart_values
from components.backup.base import BackupArgs, BackupDestination, backup_service_account
from components.settings import Settings
from components.targets.base import ClusterTarget


def backup_enabled(settings: Settings) -> bool:
    """The chart's `backup.enabled` after every values layer (values-<stack>.yaml turns it on
    in prod and enterprise; `pganalytics:chart.values.backup.enabled` overrides it)."""
    merged = chart_values.merged_values(settings, include_defaults=True)
    return bool(merged.get("backup", {}).get("enabled"))


def build_backup(
    settings: Settings,
    target: ClusterTarget,
    namespace: pulumi.Input[str],
    opts: pulumi.ResourceOptions | None = None,
) -> BackupDestination | None:
    """The backup destination the settings select, or None when backups are off or stay on the
    in-cluster volume (`existing` without `backup.endpoint`, which is warned about)."""
    if not backup_enabled(settings):
        return None
    args = BackupArgs(settings=settings, target=target, namespace=namespace)
    if settings.target == "aws":
        from components.backup.aws import S3Backup

        return S3Backup("backup", args, opts)
    if settings.target == "gcp":
        from components.backup.gcp import GcsBackup

        return GcsBackup("backup", args, opts)
    if settings.target == "azure":
        from components.backup.azure import AzureBlobBackup

        return AzureBlobBackup("backup", args, opts)
    if settings.backup.endpoint:
        from components.backup.s3compatible import S3CompatibleBackup

        return S3CompatibleBackup("backup", args, opts)
    pulumi.log.warn(
        "backups are on but stay in the cluster (the backup volume shares its cluster and "
        "storage with the database, so it is not a backup): set pganalytics:backup.endpoint, "
        "backup.bucketName and backup.credentialsSecret to upload them to an S3-compatible "
        "store, see docs/BACKUP_RESTORE.md"
    )
    return None


__all__ = [
    "BackupArgs",
    "BackupDestination",
    "backup_enabled",
    "backup_service_account",
    "build_backup",
]
