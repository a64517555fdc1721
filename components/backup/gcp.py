"""Backups on GCP: a GCS bucket (Google-managed encryption, uniform access, public access
prevention enforced, object versioning, lifecycle retention, soft delete for backup.lockDays
days) and two Google service accounts, through GKE Workload Identity (the cluster's workload
pool): one only the backup Kubernetes ServiceAccount may impersonate, which creates objects
and can neither replace nor delete one, and one only the restore ServiceAccount may
impersonate, which only reads."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from components.backup.base import (
    BACKUP_PREFIX,
    CNPG_PREFIX,
    BackupArgs,
    BackupDestination,
)
from components.settings.backup import GCS_SOFT_DELETE_MIN_DAYS

# GKE's metadata server answers Workload Identity token requests; on Dataplane V2 the
# NetworkPolicy must allow it (169.254.169.252:988) besides the metadata address itself.
METADATA_EGRESS = {
    "to": [
        {"ipBlock": {"cidr": "169.254.169.254/32"}},
        {"ipBlock": {"cidr": "169.254.169.252/32"}},
    ],
    "ports": [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 988}],
}
DAY = 24 * 3600


def soft_delete_seconds(lock_days: int) -> int:
    """How long a deleted or overwritten object stays restorable: backup.lockDays (at least
    GCS's minimum of 7 days), else 7 days. A soft-deleted object cannot be deleted for good
    before then, and shortening the policy later does not shorten it
    (https://cloud.google.com/storage/docs/use-soft-delete: "Existing soft-deleted objects
    aren't affected by updates made to the soft delete policy"). Bucket-wide, so CloudNativePG's
    deletes succeed and are kept as long. A bucket retention policy would lock harder but
    cannot coexist with versioning and refuses barman's rewrites (docs/BACKUP_RESTORE.md)."""
    return max(lock_days, GCS_SOFT_DELETE_MIN_DAYS) * DAY


def _label(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in value.lower())[:63]


def service_account_id(cluster_name: str, suffix: str = "bk") -> str:
    """6-30 characters, a letter first, no trailing '-': `-bk` writes, `-rs` restores."""
    return f"{cluster_name[:26].rstrip('-')}-{suffix}"


class GcsBackup(BackupDestination):
    """Outputs: `bucket_name`, `service_account_email`, `chart_values`."""

    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pganalytics:backup:GcsBackup", name, args, opts)
        s = args.settings
        project = s.gcp_project
        provider = args.target.gcp_provider
        child, keep = self._options(provider)
        labels = {_label(k): _label(v) for k, v in self._tags().items()}

        self.bucket = gcp.storage.Bucket(
            "backup-bucket",
            name=s.backup.bucket_name or self._generated_name(),
            project=project,
            location=s.region.upper(),
            storage_class="STANDARD",
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning={"enabled": True},
            soft_delete_policy={
                "retention_duration_seconds": soft_delete_seconds(s.backup.lock_days)
            },
            lifecycle_rules=[
                {
                    "action": {"type": "Delete"},
                    "condition": {
                        "age": s.backup.retention_days,
                        "with_state": "LIVE",
                        "matches_prefixes": [f"{BACKUP_PREFIX}/"],
                    },
                },
                {
                    "action": {"type": "Delete"},
                    "condition": {
                        "days_since_noncurrent_time": s.backup.version_retention_days,
                        "with_state": "ARCHIVED",
                    },
                },
            ],
            force_destroy=False,
            labels=labels,
            opts=keep,
        )

        # --- identities: the backup pods write, the restore Job only reads ------------------
        # The writer creates and reads objects (upload, verify); no delete, so no overwrite
        # either: objectCreator "does not give permission to view, delete, or replace objects"
        # (https://cloud.google.com/storage/docs/access-control/iam-roles). The lifecycle rule
        # expires backups.
        self.service_account = self._workload_account(
            "backup",
            service_account_id(s.cluster_name),
            f"pgAnalytics backups ({s.cluster_name})",
            self.service_account_name,
            ("roles/storage.objectCreator", "roles/storage.objectViewer"),
            child,
        )
        self.restore_service_account = self._workload_account(
            "backup-restore",
            service_account_id(s.cluster_name, "rs"),
            f"pgAnalytics restore ({s.cluster_name})",
            self.restore_service_account_name,
            ("roles/storage.objectViewer",),
            child,
        )

        self.bucket_name = self.bucket.name
        self.service_account_email = self.service_account.email
        if self.cnpg:
            self._cnpg_identity(child)
        self.chart_values = {
            "destination": {"type": "gcs", "bucket": self.bucket_name, "prefix": BACKUP_PREFIX},
            "serviceAccount": {
                "annotations": {"iam.gke.io/gcp-service-account": self.service_account_email}
            },
            "restore": {
                "serviceAccount": {
                    "annotations": {
                        "iam.gke.io/gcp-service-account": self.restore_service_account.email
                    }
                }
            },
            # The chart refuses egress to 169.254.169.254 unless acknowledged: on GKE with
            # Workload Identity that address is the GKE metadata server, which hands the pod its
            # Kubernetes ServiceAccount's Google identity, never the node's.
            "networkPolicy": {"extraEgress": [METADATA_EGRESS], "acknowledgeMetadataEgress": True},
        }
        self._outputs()

    def _cnpg_identity(self, child: pulumi.ResourceOptions) -> None:
        """The CloudNativePG instances' Google service account (GKE Workload Identity for the
        Cluster's ServiceAccount): objects under cnpg/ (create, read, delete what barman's
        retention expires) and the bucket listing barman needs, through an IAM condition."""
        s = self.settings
        account = self._workload_account(
            "cnpg",
            service_account_id(s.cluster_name, "pg"),
            f"pgAnalytics database WAL archive ({s.cluster_name})",
            self.cnpg_service_account,
            (),
            child,
        )
        gcp.storage.BucketIAMMember(
            "cnpg-object-user",
            bucket=self.bucket.name,
            role="roles/storage.objectUser",
            member=account.email.apply(lambda e: f"serviceAccount:{e}"),
            condition={
                "title": "cnpg-prefix",
                "description": "the WAL archive and base backups, and listing the bucket",
                "expression": self.bucket.name.apply(
                    lambda b: (
                        f'resource.name.startsWith("projects/_/buckets/{b}/objects/'
                        f'{CNPG_PREFIX}/") || resource.type == "storage.googleapis.com/Bucket"'
                    )
                ),
            },
            opts=child,
        )
        self.cnpg_values = {
            "backup": self._cnpg_backup(
                self.bucket.name.apply(lambda b: f"gs://{b}/{CNPG_PREFIX}"),
                "gcs",
                retentionDays=s.backup.retention_days,
                networkPolicy={"extraEgress": [METADATA_EGRESS]},
            ),
            "serviceAccount": {"annotations": {"iam.gke.io/gcp-service-account": account.email}},
        }

    def _workload_account(self, name, account_id, display_name, service_account, roles, child):
        """A Google service account that only `<namespace>/<service_account>` may impersonate
        (GKE Workload Identity), holding `roles` on the bucket."""
        project = self.settings.gcp_project
        account = gcp.serviceaccount.Account(
            f"{name}-service-account",
            account_id=account_id,
            display_name=display_name,
            project=project,
            opts=child,
        )
        member = account.email.apply(lambda e: f"serviceAccount:{e}")
        for role in roles:
            gcp.storage.BucketIAMMember(
                f"{name}-{role.split('.')[-1].lower()}",
                bucket=self.bucket.name,
                role=role,
                member=member,
                opts=child,
            )
        gcp.serviceaccount.IAMMember(
            f"{name}-workload-identity",
            service_account_id=account.name,
            role="roles/iam.workloadIdentityUser",
            member=pulumi.Output.from_input(self.namespace).apply(
                lambda ns: f"serviceAccount:{project}.svc.id.goog[{ns}/{service_account}]"
            ),
            opts=child,
        )
        return account
