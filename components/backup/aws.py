"""Backups on AWS: an S3 bucket (SSE-S3 encrypted, versioned, lifecycle retention, every public
access blocked, ACLs off, TLS only, no upload over an existing backup key, and with
backup.lockDays S3 Object Lock) and two IAM roles, through EKS Pod Identity (the cluster runs
its agent add-on): one that only the backup ServiceAccount can assume, which writes and
cannot delete, and one that only the restore ServiceAccount can assume, which only reads."""

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
from components.targets.eks.identity import pod_identity_trust

# The EKS Pod Identity agent serves credentials on the node at this link-local address.
POD_IDENTITY_AGENT_EGRESS = {
    "to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}],
    "ports": [{"protocol": "TCP", "port": 80}],
}


def bucket_policy(bucket_arn: str) -> str:
    """Refuses every request that does not use TLS, and any upload under the backups' prefix
    that could replace an object: PutObject and CompleteMultipartUpload must carry
    `If-None-Match: *`, which S3 answers with 412 when the key exists (conditional writes,
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html; the
    parts of a multipart upload take no such header, s3:ObjectCreationOperation exempts them).
    For every principal, the deploy identity included; CloudNativePG's prefix is untouched."""
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
                },
                {
                    "Sid": "WriteBackupsOnce",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:PutObject",
                    "Resource": f"{bucket_arn}/{BACKUP_PREFIX}/*",
                    "Condition": {
                        "Null": {"s3:if-none-match": "true"},
                        "Bool": {"s3:ObjectCreationOperation": "true"},
                    },
                },
            ],
        }
    )


def _list_backups(bucket_arn: str) -> dict:
    return {
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": bucket_arn,
        "Condition": {"StringLike": {"s3:prefix": [f"{BACKUP_PREFIX}/*", BACKUP_PREFIX]}},
    }


def writer_policy(bucket_arn: str) -> str:
    """Upload (once: the bucket policy), read back (verify) and list; no delete, no retention
    change: the lifecycle rule expires backups, so a compromised job can erase none."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                _list_backups(bucket_arn),
                {
                    "Effect": "Allow",
                    "Action": [
                        "s3:PutObject",
                        "s3:GetObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    "Resource": f"{bucket_arn}/{BACKUP_PREFIX}/*",
                },
            ],
        }
    )


def reader_policy(bucket_arn: str) -> str:
    """The restore Job's: list and read the backups, nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                _list_backups(bucket_arn),
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject"],
                    "Resource": f"{bucket_arn}/{BACKUP_PREFIX}/*",
                },
            ],
        }
    )


def archiver_policy(bucket_arn: str) -> str:
    """The CloudNativePG instances, under cnpg/ only: archive WAL and base backups, read them
    back for a restore, delete what barman's retention policy expires (with Object Lock on, a
    delete leaves a delete marker and the locked version stays until its retention ends)."""
    prefix = {"s3:prefix": [f"{CNPG_PREFIX}/*", CNPG_PREFIX]}
    objects = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": bucket_arn,
                 "Condition": {"StringLike": prefix}},
                {"Effect": "Allow", "Action": objects,
                 "Resource": f"{bucket_arn}/{CNPG_PREFIX}/*"},
            ],
        }
    )  # fmt: skip


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
        if s.backup.lock_days:
            # In place on an existing bucket: this resource, unlike the Bucket's own
            # objectLockEnabled (which forces a new bucket), enables Object Lock on a versioned
            # bucket that exists (pulumi-aws s3.BucketObjectLockConfiguration: "can be used
            # to enable Object Lock for new and existing buckets"). Irreversible in S3: the
            # bucket keeps Object Lock and versioning for good; lockDays 0 removes only the
            # default retention. Bucket-wide: CloudNativePG's objects under its own prefix are
            # locked too, and its deletes leave delete markers (docs/BACKUP_RESTORE.md).
            aws.s3.BucketObjectLockConfiguration(
                "backup-object-lock",
                bucket=bucket_id,
                object_lock_enabled="Enabled",
                rule={
                    "default_retention": {
                        "mode": s.backup.lock_mode.upper(),
                        "days": s.backup.lock_days,
                    }
                },
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[versioning])
                ),
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
                # CloudNativePG's: barman expires its own objects (a delete marker under Object
                # Lock); the versions it leaves go after backup.versionRetentionDays.
                *(
                    [
                        {
                            "id": "cnpg-noncurrent-versions",
                            "status": "Enabled",
                            "filter": {"prefix": f"{CNPG_PREFIX}/"},
                            "noncurrent_version_expiration": {
                                "noncurrent_days": s.backup.version_retention_days
                            },
                            "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                        }
                    ]
                    if self.cnpg
                    else []
                ),
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

        # --- identities: the backup pods write, the restore Job only reads ------------------
        self.role, self.association = self._pod_role(
            "backup", self.service_account_name, writer_policy, args, tags, child
        )
        self.restore_role, _ = self._pod_role(
            "backup-restore", self.restore_service_account_name, reader_policy, args, tags, child
        )

        self.bucket_name = self.bucket.bucket
        self.role_arn = self.role.arn
        if self.cnpg:
            # The CloudNativePG instances' own role, under cnpg/ only (EKS Pod Identity; the
            # plugin's barman-cloud finds it through the pod's credentials).
            self._pod_role("cnpg", self.cnpg_service_account, archiver_policy, args, tags, child)
            self.cnpg_values = {
                "backup": self._cnpg_backup(
                    self.bucket.bucket.apply(lambda b: f"s3://{b}/{CNPG_PREFIX}"),
                    "s3",
                    s3={"inheritFromIAMRole": True, "region": s.region},
                    retentionDays=s.backup.retention_days,
                    networkPolicy={"extraEgress": [POD_IDENTITY_AGENT_EGRESS]},
                )
            }
        self.chart_values = {
            "destination": {
                "type": "s3",
                "bucket": self.bucket_name,
                "prefix": BACKUP_PREFIX,
                "s3": {
                    "region": s.region,
                    "provider": "AWS",
                    "endpoint": "",
                    "existingSecret": "",
                    "writeOnce": True,  # the bucket policy refuses an upload without it
                },
            },
            "networkPolicy": {"extraEgress": [POD_IDENTITY_AGENT_EGRESS]},
        }
        self._outputs()

    def _pod_role(self, name, service_account, policy, args, tags, child):
        """An IAM role `<clusterName>-<name>` that only `<namespace>/<service_account>` can
        assume (EKS Pod Identity), with `policy(bucket ARN)` inline: (role, association)."""
        role = aws.iam.Role(
            f"{name}-role",
            name=f"{args.settings.cluster_name}-{name}",
            # Only this cluster's <namespace>/<service_account>, through EKS Pod Identity.
            assume_role_policy=pod_identity_trust(
                args.target.cluster.arn, args.namespace, service_account
            ),
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
            service_account=service_account,
            role_arn=role.arn,
            tags=tags,
            opts=child,
        )
        return role, association
