"""Backups from an `existing` cluster to an S3-compatible store that already exists (MinIO,
Ceph, Wasabi, AWS S3 with keys, ...): no cloud resource, only the chart values. The keys come
from a Secret the operator creates in the release namespace (docs/BACKUP_RESTORE.md), the
restore's from another when backup.restoreCredentialsSecret names read-only keys. Uploads
send If-None-Match and, with backup.lockDays, set Object Lock on each object."""

from __future__ import annotations

from urllib.parse import urlsplit

import pulumi

from components.backup.base import BACKUP_PREFIX, CNPG_PREFIX, BackupArgs, BackupDestination

DEFAULT_REGION = "us-east-1"


def endpoint_port(endpoint: str) -> int:
    parts = urlsplit(endpoint)
    return parts.port or (443 if parts.scheme == "https" else 80)


class S3CompatibleBackup(BackupDestination):
    """Outputs: `bucket_name`, `chart_values`."""

    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pganalytics:backup:S3CompatibleBackup", name, args, opts)
        b = args.settings.backup
        self.bucket_name = pulumi.Output.from_input(b.bucket_name)
        self.chart_values = {
            "destination": {
                "type": "s3",
                "bucket": b.bucket_name,
                "prefix": BACKUP_PREFIX,
                "s3": {
                    "endpoint": b.endpoint,
                    "region": b.region or DEFAULT_REGION,
                    "provider": "Other",
                    "forcePathStyle": b.force_path_style,
                    "existingSecret": b.credentials_secret,
                    "writeOnce": True,
                    # The store's bucket must have Object Lock enabled (docs/BACKUP_RESTORE.md).
                    "objectLock": {
                        "mode": b.lock_mode.upper() if b.lock_days else "",
                        "days": b.lock_days,
                    },
                },
            },
            "restore": {"existingSecret": b.restore_credentials_secret},
            # Your own store may sit in a private network: only the link-local range (the
            # metadata address) is left out of the 0.0.0.0/0 egress, not the private ranges.
            "networkPolicy": {
                "objectStorePorts": [endpoint_port(b.endpoint)],
                "objectStoreExcept": ["169.254.0.0/16"],
            },
        }
        if self.cnpg:
            # The same store and keys as the dumps, under cnpg/.
            self.cnpg_values = {
                "backup": self._cnpg_backup(
                    f"s3://{b.bucket_name}/{CNPG_PREFIX}",
                    "s3",
                    endpointURL=b.endpoint,
                    s3={
                        "inheritFromIAMRole": False,
                        "existingSecret": b.credentials_secret,
                        "region": b.region or DEFAULT_REGION,
                    },
                    retentionDays=args.settings.backup.retention_days,
                    networkPolicy={"objectStorePorts": [endpoint_port(b.endpoint)]},
                )
            }
        self._outputs()
