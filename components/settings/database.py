"""The `database` config object: which PostgreSQL holds pgAnalytics' data.

- `bundled`: the chart's TimescaleDB StatefulSet, one pod (dev).
- `cloudnativepg`: a CloudNativePG Cluster (prod, enterprise): instances spread across zones
  with automated failover, WAL archived to the backup bucket with the cloud's workload identity,
  point-in-time recovery, a PgBouncer Pooler (docs/BACKUP_RESTORE.md). The program installs the
  operator and the Barman Cloud plugin unless `operator.install` is false.
- `external`: a PostgreSQL you run, named by `chart.values.externalDatabase.*`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import Field, ValidationInfo, model_validator
from pydantic import field_validator as check

from components.settings.base import Flag, Model, Namespace, Text, owned_namespace
from components.settings.checks import NAMESPACE, Problems, fail

CNPG_NAMESPACE = "cnpg-system"
CLUSTER_NAME = re.compile(r"[a-z]([-a-z0-9]{0,48}[a-z0-9])?")
BACKUP_ID = re.compile(r"[0-9]{8}T[0-9]{6}")


def parse_time(value: str) -> dt.datetime | None:
    """An RFC 3339 time with a zone (2026-01-01T02:15:00Z), or None."""
    date, clock = r"[0-9]{4}-[0-9]{2}-[0-9]{2}", r"[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    if not re.fullmatch(rf"{date}[T ]{clock}(Z|[+-][0-9]{{2}}:?[0-9]{{2}})", value):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class Operator(Model):
    """The CloudNativePG operator and its Barman Cloud plugin (pinned charts)."""

    install: Flag = True
    """Install the operator, its CRDs and the Barman Cloud plugin (with cert-manager, which the
    plugin's TLS needs); false when the cluster has them already (same namespace for both)."""
    namespace: Namespace = CNPG_NAMESPACE
    """Namespace of the operator and the plugin (created by the program when it installs them)."""

    @check("namespace")
    def _namespace(cls, value: str) -> str:
        if owned_namespace(value):
            fail(f"{owned_namespace(value)}; the operator gets its own", CNPG_NAMESPACE)
        return value


class Restore(Model):
    """A new cluster created from the object store (point-in-time recovery): read only when the
    Cluster is created, so it goes with a new database.clusterName (docs/BACKUP_RESTORE.md)."""

    from_cluster: Text = ""
    """clusterName of the cluster whose base backups and WAL are read; empty: no restore."""
    target_time: Text = ""
    """Recover up to this time (RFC 3339 with a zone, e.g. 2026-01-01T02:15:00Z); empty: to the
    end of the archived WAL."""
    backup_id: Text = ""
    """Start from this base backup (barman id such as 20260101T013000); empty: the newest one
    before targetTime."""

    @check("from_cluster")
    def _from(cls, value: str) -> str:
        if value and not CLUSTER_NAME.fullmatch(value):
            fail(f"is not a cluster name (got {value!r})", "pganalytics-db")
        return value

    @check("target_time")
    def _time(cls, value: str) -> str:
        if not value:
            return value
        when = parse_time(value)
        if when is None:
            fail(f"must be an RFC 3339 time with a zone (got {value!r})", "2026-01-01T02:15:00Z")
        if when > dt.datetime.now(dt.timezone.utc):
            now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
            fail(f"is in the future (got {value}; now is {now}): nothing is archived there yet",
                 now.replace("+00:00", "Z"))  # fmt: skip
        return value

    @check("backup_id")
    def _backup(cls, value: str) -> str:
        if value and not BACKUP_ID.fullmatch(value):
            fail(f"is not a barman backup id like 20260101T013000 (got {value!r})")
        return value

    @model_validator(mode="after")
    def _source(self) -> Restore:
        if (self.target_time or self.backup_id) and not self.from_cluster:
            why = "is required with restore.targetTime or restore.backupId (whose backups?)"
            fix = (f"pulumi config set --path {NAMESPACE}:database.restore.fromCluster "
                   "<clusterName of the cluster whose backups to read>")  # fmt: skip
            fail(why, key="fromCluster", fix=fix)
        return self


class Database(Model):
    """Which PostgreSQL holds pgAnalytics' data (docs/BACKUP_RESTORE.md)."""

    mode: Literal["bundled", "cloudnativepg", "external"] = "bundled"
    """bundled: the chart's TimescaleDB StatefulSet (one pod); cloudnativepg: a CloudNativePG
    cluster over zones with WAL archiving and PITR (prod, enterprise); external: your own
    PostgreSQL (chart.values.externalDatabase). A protected stack does not switch from bundled
    to cloudnativepg by a plain config change (docs/BACKUP_RESTORE.md, migration)."""
    operator: Operator = Field(default_factory=dict)
    """cloudnativepg: the operator and the Barman Cloud plugin: install (true) and namespace
    (cnpg-system)."""
    cluster_name: Text = ""
    """cloudnativepg: name of the Cluster and of its backups in the bucket; empty:
    pganalytics-db. A restore creates a cluster of another name."""
    instances: int = Field(3, ge=1, le=9)
    """cloudnativepg: PostgreSQL instances (a primary and hot standbys), one per node, spread
    across zones."""
    min_sync_replicas: int = Field(0, ge=0, le=8)
    """cloudnativepg: standbys every commit waits for (synchronous replication); 0:
    asynchronous. At most instances - 1."""
    archive_timeout: int = Field(300, ge=10, le=300)
    """cloudnativepg: seconds after which a WAL segment is archived even if not full: the data
    at risk on the loss of the primary's zone, at most 300 (5 minutes)."""
    restore: Restore = Field(default_factory=dict)
    """cloudnativepg: create the cluster from the bucket: fromCluster, targetTime, backupId
    (docs/BACKUP_RESTORE.md)."""
    migrate_from_bundled: Flag = False
    """A protected stack moving from bundled to cloudnativepg (docs/BACKUP_RESTORE.md): set it
    while still bundled (the bundled StatefulSet loses its protection, its volume stays), take
    the last dump, then switch the mode and restore that dump into the new cluster."""

    @check("cluster_name")
    def _cluster_name(cls, value: str) -> str:
        if value and not CLUSTER_NAME.fullmatch(value):
            why = "must be 2-50 lowercase letters, digits or '-', starting with a letter"
            fail(f"{why} (got {value!r})", "pganalytics-db")
        return value or "pganalytics-db"

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Database:
        found = Problems()
        if self.min_sync_replicas > self.instances - 1:
            why = f"needs more standbys than instances - 1 = {self.instances - 1}"
            found.add("minSyncReplicas", f"{why} (got {self.min_sync_replicas})",
                      max(self.instances - 1, 0))  # fmt: skip
        if self.restore.from_cluster and self.restore.from_cluster == self.cluster_name:
            why = ("names this cluster: a restore creates a new cluster that archives under its "
                   "own name, beside the backups it reads")  # fmt: skip
            found.add("restore.fromCluster", why, fix_key="clusterName",
                      value=f"{self.cluster_name}-restored"[:50])  # fmt: skip
        if self.mode != "cloudnativepg" and self.restore.from_cluster:
            why = f"is only used with database.mode cloudnativepg (mode is {self.mode})"
            found.add("restore.fromCluster", why, "cloudnativepg", fix_key="mode")
        if self.migrate_from_bundled and self.mode == "external":
            found.add("migrateFromBundled", "moves to cloudnativepg, not to an external server",
                      False)  # fmt: skip
        found.raise_any()
        return self

    @property
    def cloudnativepg(self) -> bool:
        return self.mode == "cloudnativepg"
