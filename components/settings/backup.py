"""The `backup` config object: where the chart's backup job uploads (components/backup/).

On a cloud the program creates the bucket (S3, GCS) or the storage account and container
(Azure), so only names and retention are settable there; on `existing` the job uploads to an
S3-compatible store that exists, named by endpoint, bucket and a Secret with its keys. Every
name is checked against the rules of the store that will receive it, so a bad one fails here
and not in the cloud API halfway through an update.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from typing import Literal

from pydantic import Field, ValidationInfo, model_validator
from pydantic import field_validator as check

from components.settings.base import Flag, Model, Text, ctx
from components.settings.checks import Problems, fail

S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
GCS_BUCKET = re.compile(r"[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]")
AZURE_CONTAINER = re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]")
AZURE_STORAGE_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")
# Names S3 keeps for itself (access point aliases, directory and table buckets, demos).
S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
HTTP_ENDPOINT = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?")
# A Secret name is a DNS-1123 subdomain.
SECRET_NAME = re.compile(
    r"(?=.{1,253}\Z)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
REGION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

# GCS soft delete keeps objects 7 to 90 days (https://cloud.google.com/storage/docs/soft-delete).
GCS_SOFT_DELETE_MIN_DAYS = 7
GCS_SOFT_DELETE_MAX_DAYS = 90

BUCKET_EXAMPLE = "pganalytics-backups-example"  # valid for S3, GCS and an Azure container
ENDPOINT_EXAMPLE = "https://s3.example.com"
SECRET_EXAMPLE = "pganalytics-backup-s3"


def bucket_name_problem(target: str, name: str) -> str:
    """Why `name` cannot be the backup bucket (the container on azure) of `target`, or ""."""
    if target == "azure":
        if not AZURE_CONTAINER.fullmatch(name):
            return "must be 3-63 lowercase letters, digits or single '-' (an Azure container)"
        return ""
    pattern = GCS_BUCKET if target == "gcp" else S3_BUCKET
    if not pattern.fullmatch(name) or ".." in name:
        return (
            "must be 3-63 lowercase letters, digits, '-' or '.' (gcp also '_'), "
            "starting and ending with a letter or digit"
        )
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(name)
        return "must not look like an IP address"
    if target == "gcp" and (name.startswith("goog") or "google" in name):
        return "must not start with 'goog' or contain 'google' (GCS reserves them)"
    if target in ("aws", "existing") and (
        name.startswith(S3_RESERVED_PREFIXES) or name.endswith(S3_RESERVED_SUFFIXES)
    ):
        reserved = ", ".join((*S3_RESERVED_PREFIXES, *S3_RESERVED_SUFFIXES))
        return f"uses a prefix or suffix S3 reserves ({reserved})"
    return ""


class Backup(Model):
    """Off-cluster backups (docs/BACKUP_RESTORE.md), used while the chart's backup.enabled is
    true (values-prod.yaml, values-enterprise.yaml). Clouds: the program creates an encrypted,
    versioned, non-public bucket and a workload identity for the backup job only. existing:
    an S3-compatible store you own."""

    retention_days: int = Field(30, ge=1, le=3650)
    """Days a backup is kept in the bucket (lifecycle rule), 1-3650."""
    version_retention_days: int = Field(7, ge=1, le=365)
    """Days an overwritten or deleted object version is kept (Azure: blob soft delete), 1-365."""
    bucket_name: Text = ""
    """Clouds: the bucket (S3, GCS) or container (Azure) the program creates; empty:
    <clusterName>-backups-<random> (Azure: backups). existing: the bucket at backup.endpoint,
    required with it."""
    storage_account_name: Text = ""
    """Azure only: the storage account the program creates (3-24 lowercase letters and digits,
    globally unique); empty: pgabk<random>."""
    endpoint: Text = ""
    """existing only: URL of an S3-compatible store, e.g. https://minio.example.com:9000;
    empty keeps the dumps on the backup volume in the cluster (a warning says so)."""
    region: Text = ""
    """existing only: region of that store; empty: us-east-1."""
    credentials_secret: Text = ""
    """existing only: a Secret in the chart namespace with keys access-key-id and
    secret-access-key; required with backup.endpoint."""
    force_path_style: Flag = True
    """existing only: path-style requests (most S3-compatible stores need them)."""
    restore_credentials_secret: Text = ""
    """existing only: a Secret like credentialsSecret holding read-only keys, used by the
    restore Job only; empty: the restore reads with the backup's keys."""
    lock_days: int = Field(0, ge=0, le=3650)
    """Days each backup is immutable after it is written (0: off; 14 in prod and enterprise),
    at most retentionDays so that expired objects stay deletable. aws: S3 Object Lock, the
    bucket's default retention (irreversible: Object Lock and versioning stay on for good);
    gcp: soft delete keeps a deleted or overwritten object that many days, 7-90; azure: a
    time-based retention policy on the backups container; existing: Object Lock set on each
    upload (the bucket must have Object Lock enabled). docs/BACKUP_RESTORE.md#immutability."""
    lock_mode: Literal["governance", "compliance"] = "governance"
    """aws and existing: Object Lock mode. governance: a principal granted
    s3:BypassGovernanceRetention may still remove a version early; compliance: no one, not even
    the account root, until its retention ends."""

    @check("bucket_name")
    def _bucket_name(cls, value: str, info: ValidationInfo) -> str:
        why = bucket_name_problem(ctx(info, "target"), value) if value else ""
        if why:
            fail(f"{why} (got {value!r})", BUCKET_EXAMPLE)
        return value

    @check("storage_account_name")
    def _storage_account(cls, value: str, info: ValidationInfo) -> str:
        target = ctx(info, "target")
        if value and target != "azure":
            fail(f"is only used on target azure (target is {target})")
        if value and not AZURE_STORAGE_ACCOUNT.fullmatch(value):
            fail(f"must be 3-24 lowercase letters or digits (got {value!r})", "pgabackups0example")
        return value

    @model_validator(mode="after")
    def _lock(self, info: ValidationInfo) -> Backup:
        target, found = ctx(info, "target"), Problems()
        if self.lock_days > self.retention_days:
            why = f"must be at most backup.retentionDays ({self.retention_days}; got "
            why += f"{self.lock_days}): an expired backup must stay deletable"
            found.add("lockDays", why, self.retention_days)
        if target == "gcp" and self.lock_days > GCS_SOFT_DELETE_MAX_DAYS:
            why = f"must be at most {GCS_SOFT_DELETE_MAX_DAYS} on gcp (the longest soft delete; "
            why += f"got {self.lock_days})"
            found.add("lockDays", why, min(GCS_SOFT_DELETE_MAX_DAYS, self.retention_days))
        if self.lock_mode != "governance" and target in ("gcp", "azure"):
            why = f"is only used on aws and existing (target is {target}); "
            why += "docs/BACKUP_RESTORE.md#immutability says how to lock on this cloud"
            found.add("lockMode", why, "governance")
        found.raise_any()
        return self

    @check("endpoint", "region", "credentials_secret", "restore_credentials_secret")
    def _existing_only(cls, value: str, info: ValidationInfo) -> str:
        target = ctx(info, "target")
        if value and target != "existing":
            fail(f"is only used on target existing; on {target} the program creates the bucket")
        if info.field_name == "endpoint" and value:
            url = HTTP_ENDPOINT.fullmatch(value)
            if not url or not 0 < int((url.group(1) or ":80")[1:]) <= 65535:
                why = "must be the http(s) URL of an S3-compatible store"
                fail(f"{why} (got {value!r})", ENDPOINT_EXAMPLE)
            return value.rstrip("/")
        if info.field_name == "region" and value and not REGION.fullmatch(value):
            fail(f"is not a region name (got {value!r})", "us-east-1")
        secret = info.field_name in ("credentials_secret", "restore_credentials_secret")
        if secret and value and not SECRET_NAME.fullmatch(value):
            fail(f"is not a valid Secret name (got {value!r})", SECRET_EXAMPLE)
        return value

    @model_validator(mode="after")
    def _store_of_existing(self, info: ValidationInfo) -> Backup:
        """On existing, an endpoint needs its bucket and keys; they mean nothing without it."""
        if ctx(info, "target") != "existing":
            return self
        found = Problems()
        needs = "is required on target existing when backup.endpoint is set"
        if self.endpoint and not self.bucket_name:
            found.add("bucketName", f"{needs} (the bucket exists)", "pganalytics-backups")
        if self.endpoint and not self.credentials_secret:
            why = f"{needs}: the name of a Secret with keys access-key-id and secret-access-key"
            found.add("credentialsSecret", f"{why} in the chart's namespace", SECRET_EXAMPLE)
        given = {
            "bucketName": self.bucket_name,
            "region": self.region,
            "credentialsSecret": self.credentials_secret,
            "restoreCredentialsSecret": self.restore_credentials_secret,
        }
        for key in [k for k, v in given.items() if v and not self.endpoint]:
            why = "needs backup.endpoint on target existing (the S3-compatible store)"
            found.add(key, why, ENDPOINT_EXAMPLE, fix_key="endpoint")
        found.raise_any()
        return self
