"""The database mode (`pganalytics:database`, components/settings/database.py) as chart values,
and the refusal of a switch that would lose what is deployed.

bundled        the chart's TimescaleDB StatefulSet (timescaledb.enabled)
cloudnativepg  the chart's CloudNativePG Cluster, Pooler, ObjectStore, ScheduledBackup
               (cloudnativepg.enabled); the operator comes from the platform step, the bucket
               and the instances' identity from the backup step (components/backup/)
external       chart.values.externalDatabase

Every value here is known from the settings alone, so the chart's schema checks them before any
resource exists (values.derived_values). What needs cloud outputs (bucket, identity) is merged
by the release (`backup.cnpg_values`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from components.settings import NAMESPACE, RELEASE_NAME, ConfigError

if TYPE_CHECKING:
    from components.previous import PreviousState
    from components.settings import Settings

# basic-auth Secrets the operator reads (components/credentials.py creates them from the
# credentials Secret's passwords): name -> (role, key of the password in the credentials Secret)
SUPERUSER_SECRET = f"{RELEASE_NAME}-cnpg-superuser"
APP_SECRET = f"{RELEASE_NAME}-cnpg-app"
READER_SECRET = f"{RELEASE_NAME}-cnpg-grafana"
# The bundled StatefulSet (`<fullname>-timescaledb`) as the record names its volume.
BUNDLED_VOLUME = "timescaledb"
MIGRATION_DOC = "docs/BACKUP_RESTORE.md#moving-from-bundled-to-cloudnativepg"


def bundled_statefulset(settings: Settings) -> str:
    """Name of the bundled TimescaleDB StatefulSet (`<fullname>-timescaledb`)."""
    from components import values as chart_values
    from components.volumes import fullname

    return f"{fullname(chart_values.merged_values(settings, include_defaults=True))}-timescaledb"


def role_secrets(settings: Settings) -> dict[str, tuple[str, str]]:
    """The basic-auth Secrets of the CloudNativePG roles: {} unless the mode is cloudnativepg."""
    if not settings.database.cloudnativepg:
        return {}
    app_user = settings.chart.value("timescaledb", "auth", "username") or "pganalytics"
    reader = settings.chart.value("grafana", "datasource", "username") or "pganalytics_grafana"
    return {
        SUPERUSER_SECRET: ("postgres", "postgres-password"),
        APP_SECRET: (str(app_user), "database-password"),
        READER_SECRET: (str(reader), "grafana-admin-password"),
    }


def chart_values(settings: Settings) -> dict[str, Any]:
    """The chart values of the database mode."""
    db = settings.database
    if db.mode == "bundled":
        return {}
    if db.mode == "external":
        return {"timescaledb": {"enabled": False}}
    cnpg: dict[str, Any] = {
        "enabled": True,
        "clusterName": db.cluster_name,
        "instances": db.instances,
        "auth": {
            "superuserSecret": SUPERUSER_SECRET,
            "appSecret": APP_SECRET,
            "readerSecret": READER_SECRET,
        },
        "parameters": {"archive_timeout": f"{db.archive_timeout}s"},
        "networkPolicy": {"operatorNamespace": db.operator.namespace},
    }
    if db.min_sync_replicas:
        cnpg["minSyncReplicas"] = db.min_sync_replicas
        cnpg["maxSyncReplicas"] = db.instances - 1
    if db.restore.from_cluster:
        cnpg["recovery"] = {
            "enabled": True,
            "sourceClusterName": db.restore.from_cluster,
            "targetTime": db.restore.target_time,
            "backupID": db.restore.backup_id,
        }
    return {"timescaledb": {"enabled": False}, "cloudnativepg": cnpg}


def check_mode_change(settings: Settings, previous: PreviousState) -> None:
    """ConfigError when a protected stack whose last update ran the bundled database switches to
    cloudnativepg without the documented migration: the bundled StatefulSet is protected (the
    update would fail halfway) and the new cluster would start empty."""
    db = settings.database
    was_bundled = previous.volumes is not None and BUNDLED_VOLUME in previous.volumes
    if not (settings.protect and was_bundled and db.cloudnativepg) or db.migrate_from_bundled:
        return
    key = f"{NAMESPACE}:database.mode"
    raise ConfigError(
        [
            f"{key} switches this protected stack from the bundled database, which holds its "
            "data, to a new, empty CloudNativePG cluster; a plain switch would fail on the "
            "protected StatefulSet and lose nothing only by accident. fix: pulumi config set "
            f"--path {key} bundled, then follow {MIGRATION_DOC} (set "
            f"{NAMESPACE}:database.migrateFromBundled true and pulumi up while still bundled, "
            "take the last dump, switch the mode, restore the dump into the new cluster)"
        ],
        settings.stack,
    )
