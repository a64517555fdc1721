"""Backups on GCP: a GCS bucket (Google-managed encryption, uniform access, public access
prevention enforced, object versioning, lifecycle retention, soft delete) and a Google service
account that only the backup Kubernetes ServiceAccount may impersonate, through GKE Workload
Identity (the cluster's workload pool)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from components.backup.base import (
    BACKUP_PREFIX,
    CNPG_PREFIX,
    BackupArgs,
    BackupDestination,
)

# GKE's metadata server answers Workload Identity token requests; on Dataplane V2 the
# NetworkPolicy must allow it (169.254.169.252:988) besides the metadata address itself.
METADATA_EGRESS = {
    "to": [
        {"ipBlock": {"cidr": "169.254.169.254/32"}},
        {"ipBlock": {"cidr": "169.254.169.252/32"}},
    ],
    "ports": [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 988}],
}
SOFT_DELETE_SECONDS = 7 * 24 * 3600


def _label(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in value.lower())[:63]


def service_account_id(cluster_name: str) -> str:
    """6-30 characters, a letter first, no trailing '-'."""
    return f"{cluster_name[:26].rstrip('-')}-bk"


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
            soft_delete_policy={"retention_duration_seconds": SOFT_DELETE_SECONDS},
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

        # --- identity: only <namespace>/<fullname>-backup may impersonate it ------------------
        self.service_account = gcp.serviceaccount.Account(
            "backup-service-account",
            account_id=service_account_id(s.cluster_name),
            display_name=f"pgAnalytics backups ({s.cluster_name})",
            project=project,
            opts=child,
        )
        member = self.service_account.email.apply(lambda e: f"serviceAccount:{e}")
        # Create and read objects (upload, verify, restore); no delete: the lifecycle rule
        # expires backups.
        for role in ("roles/storage.objectCreator", "roles/storage.objectViewer"):
            gcp.storage.BucketIAMMember(
                f"backup-{role.split('.')[-1].lower()}",
                bucket=self.bucket.name,
                role=role,
                member=member,
                opts=child,
            )
        ksa = self.service_account_name
        wi_member = pulumi.Output.from_input(args.namespace).apply(
            lambda ns: f"serviceAccount:{project}.svc.id.goog[{ns}/{ksa}]"
        )
        gcp.serviceaccount.IAMMember(
            "backup-workload-identity",
            service_account_id=self.service_account.name,
            role="roles/iam.workloadIdentityUser",
            member=wi_member,
            opts=child,
        )

        self.bucket_name = self.bucket.name
        self.service_account_email = self.service_account.email
        if self.cnpg:
            self._cnpg_identity(args, child)
        self.chart_values = {
            "destination": {"type": "gcs", "bucket": self.bucket_name, "prefix": BACKUP_PREFIX},
            "serviceAccount": {
                "annotations": {"iam.gke.io/gcp-service-account": self.service_account_email}
            },
            "networkPolicy": {"extraEgress": [METADATA_EGRESS]},
        }
        self._outputs()

    def _cnpg_identity(self, args: BackupArgs, child: pulumi.ResourceOptions) -> None:
        """A Google service account only the Cluster's ServiceAccount may impersonate (GKE
        Workload Identity), with object read/write/delete under cnpg/ and the bucket listing
        barman needs."""
        s = args.settings
        project = s.gcp_project
        account = gcp.serviceaccount.Account(
            "cnpg-service-account",
            account_id=f"{s.cluster_name[:26].rstrip('-')}-pg",
            display_name=f"pgAnalytics database WAL archive ({s.cluster_name})",
            project=project,
            opts=child,
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
        ksa = self.cnpg_service_account
        gcp.serviceaccount.IAMMember(
            "cnpg-workload-identity",
            service_account_id=account.name,
            role="roles/iam.workloadIdentityUser",
            member=pulumi.Output.from_input(args.namespace).apply(
                lambda ns: f"serviceAccount:{project}.svc.id.goog[{ns}/{ksa}]"
            ),
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
