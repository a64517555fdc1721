"""Backups on AWS: an S3 bucket (SSE-S3 encrypted, versioned, lifecycle retention, every public
access blocked, ACLs off, TLS only) and an IAM role that only the backup ServiceAccount of the
release's namespace can assume, through EKS Pod Identity (the cluster runs its agent add-on)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.backup.base import (
    BACKUP_PREFIX,
    CNPG_PREFIX,
    BackupArgs,
    BackupDestination,
)

# The EKS Pod Identity agent serves credentials on the node at this link-local address.
POD_IDENTITY_AGENT_EGRESS = {
    "to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}],
    "ports": [{"protocol": "TCP", "port": 80}],
}


def bucket_policy(bucket_arn: str) -> str:
    """Refuses every request that does not use TLS."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def prefix_policy(bucket_arn: str, prefix: str, actions: list[str]) -> str:
    """List `prefix` and `actions` on the objects under it; nothing outside it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket"],
                    "Resource": bucket_arn,
                    "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*", prefix]}},
                },
                {"Effect": "Allow", "Action": actions, "Resource": f"{bucket_arn}/{prefix}/*"},
            ],
        }
    )


UPLOAD = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]


def writer_policy(bucket_arn: str) -> str:
    """Upload, read back (verify, restore) and list; no delete: the lifecycle rule expires
    backups, so a compromised job cannot erase them (versioning keeps overwritten ones)."""
    return prefix_policy(bucket_arn, BACKUP_PREFIX, UPLOAD)


def archiver_policy(bucket_arn: str) -> str:
    """The CloudNativePG instances under cnpg/: archive WAL and base backups, read them back for a
    restore, and delete what barman's retention policy expires; nothing outside the prefix."""
    return prefix_policy(bucket_arn, CNPG_PREFIX, [*UPLOAD, "s3:DeleteObject"])


POD_IDENTITY_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
)


class S3Backup(BackupDestination):
    """Outputs: `bucket_name`, `role_arn`, `chart_values`."""

    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pganalytics:backup:S3Backup", name, args, opts)
        s = args.settings
        provider = args.target.aws_provider
        child, keep = self._options(provider)
        tags = self._tags()

        self.bucket = aws.s3.Bucket(
            "backup-bucket",
            bucket=s.backup.bucket_name or self._generated_name(),
            force_destroy=False,  # a bucket holding backups is never emptied by a delete
            tags=tags,
            opts=keep,
        )
        bucket_id = self.bucket.id
        ownership = aws.s3.BucketOwnershipControls(
            "backup-ownership",
            bucket=bucket_id,
            rule={"object_ownership": "BucketOwnerEnforced"},  # ACLs off
            opts=child,
        )
        public_block = aws.s3.BucketPublicAccessBlock(
            "backup-public-access-block",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            "backup-encryption",
            bucket=bucket_id,
            # SSE-S3: the ETag stays the MD5 of a single-part upload, which the job verifies.
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            "backup-versioning",
            bucket=bucket_id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            "backup-lifecycle",
            bucket=bucket_id,
            rules=[
                {
                    "id": "backup-retention",
                    "status": "Enabled",
                    "filter": {"prefix": f"{BACKUP_PREFIX}/"},
                    "expiration": {"days": s.backup.retention_days},
                    "noncurrent_version_expiration": {
                        "noncurrent_days": s.backup.version_retention_days
                    },
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                },
                {
                    "id": "expired-delete-markers",
                    "status": "Enabled",
                    "filter": {},
                    "expiration": {"expired_object_delete_marker": True},
                },
            ],
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[versioning])
            ),
        )
        aws.s3.BucketPolicy(
            "backup-tls-only",
            bucket=bucket_id,
            policy=self.bucket.arn.apply(bucket_policy),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[public_block, ownership])
            ),
        )

        # --- identity: only <namespace>/<fullname>-backup may use it --------------------------
        self.role, self.association = self._pod_identity(
            "backup", self.service_account_name, writer_policy, args, child, tags
        )

        self.bucket_name = self.bucket.bucket
        self.role_arn = self.role.arn
        if self.cnpg:
            self._cnpg_identity(args, child, tags)
        self.chart_values = {
            "destination": {
                "type": "s3",
                "bucket": self.bucket_name,
                "prefix": BACKUP_PREFIX,
                "s3": {"region": s.region, "provider": "AWS", "endpoint": "", "existingSecret": ""},
            },
            "networkPolicy": {"extraEgress": [POD_IDENTITY_AGENT_EGRESS]},
        }
        self._outputs()

    def _pod_identity(self, name, ksa, policy, args: BackupArgs, child, tags):
        """An IAM role `<clusterName>-<name>` with `policy` on this bucket, which only the
        ServiceAccount `ksa` of the release namespace may use (EKS Pod Identity). Children
        `<name>-role`, `<name>-bucket-access`, `<name>-pod-identity`."""
        role = aws.iam.Role(
            f"{name}-role",
            name=f"{args.settings.cluster_name}-{name}",
            assume_role_policy=POD_IDENTITY_TRUST,
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-bucket-access",
            role=role.id,
            policy=self.bucket.arn.apply(policy),
            opts=child,
        )
        association = aws.eks.PodIdentityAssociation(
            f"{name}-pod-identity",
            cluster_name=args.target.cluster_name,
            namespace=args.namespace,
            service_account=ksa,
            role_arn=role.arn,
            tags=tags,
            opts=child,
        )
        return role, association

    def _cnpg_identity(self, args: BackupArgs, child: pulumi.ResourceOptions, tags: dict) -> None:
        """An IAM role only the Cluster's ServiceAccount may use (EKS Pod Identity), allowed
        under cnpg/ only; the plugin's barman-cloud finds it through the pod's credentials."""
        s = args.settings
        self._pod_identity("cnpg", self.cnpg_service_account, archiver_policy, args, child, tags)
        destination = self.bucket.bucket.apply(lambda b: f"s3://{b}/{CNPG_PREFIX}")
        self.cnpg_values = {
            "backup": self._cnpg_backup(
                destination,
                "s3",
                s3={"inheritFromIAMRole": True, "region": s.region},
                retentionDays=s.backup.retention_days,
                networkPolicy={"extraEgress": [POD_IDENTITY_AGENT_EGRESS]},
            )
        }
