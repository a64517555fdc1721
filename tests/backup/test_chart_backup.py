"""The chart's backup objects as `helm template` renders them: the CronJob runs the dump as
an init container and the upload as the main one, with the remote configured per store; the
scripts in the ConfigMap are byte for byte the files tests/backup runs; the NetworkPolicy opens
the object store; the schema refuses incomplete destinations. (Pod Security, image pins and
Kubernetes schemas of these objects are checked by tests/chart over its backup scenarios.)"""

from __future__ import annotations

import pytest

from tests.backup.conftest import SCRIPTS
from tests.chart.conftest import HelmError, find, pod_template, render

P = "pga-pganalytics"


def _backup(**backup):
    return render(values={"backup": {"enabled": True, **backup}})


def _env(container) -> dict:
    out = {}
    for e in container.get("env", []):
        out[e["name"]] = e.get("value", e.get("valueFrom"))
    return out


def test_upload_follows_the_dump_and_a_failure_fails_the_job():
    objs = _backup(destination={"type": "s3", "bucket": "pga-b", "s3": {"region": "eu-west-1"}})
    cj = find(objs, "CronJob", f"{P}-backup")
    job = cj["spec"]["jobTemplate"]["spec"]
    spec = pod_template(cj)["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["pg-dump"]
    assert [c["name"] for c in spec["containers"]] == ["upload"]
    assert spec["restartPolicy"] == "Never" and job["backoffLimit"] == 2
    assert job["activeDeadlineSeconds"] == 21600
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    upload = spec["containers"][0]
    assert upload["image"] == "docker.io/rclone/rclone:1.76.0"
    assert upload["command"] == ["sh", "/scripts/backup-upload.sh"]
    env = _env(upload)
    assert env["BACKUP_REMOTE"] == "backup:pga-b/pga"
    assert env["RCLONE_CONFIG_BACKUP_TYPE"] == "s3"
    assert env["RCLONE_CONFIG_BACKUP_ENV_AUTH"] == "true"  # workload identity, no keys
    assert env["RCLONE_CONFIG_BACKUP_REGION"] == "eu-west-1"
    assert env["BACKUP_VERIFY"] == "checksum"
    assert "RCLONE_CONFIG_BACKUP_ACCESS_KEY_ID" not in env
    dump = _env(spec["initContainers"][0])
    assert dump["PGUSER"] == "postgres"
    assert dump["PGPASSWORD"]["secretKeyRef"]["key"] == "postgres-password"
    assert dump["BACKUP_DATABASES"] == "pganalytics metrics"
    # The uploader only reads the dumps.
    mounts = {m["name"]: m for m in upload["volumeMounts"]}
    assert mounts["dumps"]["readOnly"] is True
    assert spec["serviceAccountName"] == f"{P}-backup"
    assert spec["automountServiceAccountToken"] is False


def test_s3_compatible_store_takes_keys_from_a_secret():
    objs = _backup(
        destination={
            "type": "s3",
            "bucket": "pga-b",
            "s3": {
                "endpoint": "https://minio.example.com:9000",
                "provider": "Minio",
                "forcePathStyle": True,
                "existingSecret": "s3-keys",
            },
        },
        networkPolicy={"objectStorePorts": [9000]},
    )
    spec = pod_template(find(objs, "CronJob", f"{P}-backup"))["spec"]
    env = _env(spec["containers"][0])
    assert env["RCLONE_CONFIG_BACKUP_ENDPOINT"] == "https://minio.example.com:9000"
    assert env["RCLONE_CONFIG_BACKUP_FORCE_PATH_STYLE"] == "true"
    assert env["RCLONE_CONFIG_BACKUP_ACCESS_KEY_ID"]["secretKeyRef"] == {
        "name": "s3-keys",
        "key": "access-key-id",
    }
    assert env["RCLONE_CONFIG_BACKUP_SECRET_ACCESS_KEY"]["secretKeyRef"]["name"] == "s3-keys"
    assert "RCLONE_CONFIG_BACKUP_ENV_AUTH" not in env
    np = find(objs, "NetworkPolicy", f"{P}-backup")
    ports = [p["port"] for rule in np["spec"]["egress"] for p in rule.get("ports", [])]
    assert 9000 in ports and 5432 in ports


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        ({"type": "gcs", "bucket": "pga-b"}, {"RCLONE_CONFIG_BACKUP_TYPE": "google cloud storage"}),
        (
            {"type": "azureblob", "bucket": "backups", "azureblob": {"account": "pgabk0x"}},
            {"RCLONE_CONFIG_BACKUP_TYPE": "azureblob", "RCLONE_CONFIG_BACKUP_ACCOUNT": "pgabk0x"},
        ),
    ],
)
def test_gcs_and_azure_use_the_workload_identity(destination, expected):
    objs = _backup(destination=destination)
    env = _env(pod_template(find(objs, "CronJob", f"{P}-backup"))["spec"]["containers"][0])
    for key, value in expected.items():
        assert env[key] == value
    assert env["RCLONE_CONFIG_BACKUP_ENV_AUTH"] == "true"


def test_identity_annotations_and_labels_reach_the_pod_and_service_account():
    objs = _backup(
        destination={"type": "azureblob", "bucket": "backups", "azureblob": {"account": "abc12"}},
        serviceAccount={"annotations": {"azure.workload.identity/client-id": "cid"}},
        podLabels={"azure.workload.identity/use": "true"},
        networkPolicy={"extraEgress": [{"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}]}]},
    )
    sa = find(objs, "ServiceAccount", f"{P}-backup")
    assert sa["metadata"]["annotations"]["azure.workload.identity/client-id"] == "cid"
    assert sa["automountServiceAccountToken"] is False
    labels = pod_template(find(objs, "CronJob", f"{P}-backup"))["metadata"]["labels"]
    assert labels["azure.workload.identity/use"] == "true"
    egress = find(objs, "NetworkPolicy", f"{P}-backup")["spec"]["egress"]
    assert {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}]} in egress
    assert any(
        rule.get("to") == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
        and rule["ports"] == [{"protocol": "TCP", "port": 443}]
        for rule in egress
    )


def test_the_configmap_holds_the_tested_scripts_byte_for_byte():
    objs = _backup(destination={"type": "gcs", "bucket": "pga-b"})
    data = find(objs, "ConfigMap", f"{P}-backup-scripts")["data"]
    files = sorted(p.name for p in SCRIPTS.glob("*.sh"))
    assert sorted(data) == files
    for name in files:
        assert data[name] == (SCRIPTS / name).read_text().rstrip("\n")


def test_without_destination_the_dump_stays_on_the_volume():
    objs = _backup()
    spec = pod_template(find(objs, "CronJob", f"{P}-backup"))["spec"]
    assert "initContainers" not in spec
    assert [c["name"] for c in spec["containers"]] == ["pg-dump"]
    find(objs, "PersistentVolumeClaim", f"{P}-backup")
    egress = find(objs, "NetworkPolicy", f"{P}-backup")["spec"]["egress"]
    assert len(egress) == 1  # the database only


def test_the_restore_job_reads_with_its_own_identity_and_restores_only_the_chart_databases():
    """Issue 18 item 6: the restore Job ran as the backup ServiceAccount, whose identity may
    write; it now runs as <fullname>-restore, which the program binds to a read-only identity,
    and both steps get the only databases they may touch."""
    objs = _backup(
        destination={"type": "gcs", "bucket": "pga-b"},
        restore={
            "enabled": True,
            "serviceAccount": {"annotations": {"iam.gke.io/gcp-service-account": "rs@p.iam"}},
        },
        serviceAccount={"annotations": {"iam.gke.io/gcp-service-account": "bk@p.iam"}},
    )
    job = find(objs, "Job", f"{P}-backup-restore-latest")
    spec = job["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == f"{P}-restore"
    sa = find(objs, "ServiceAccount", f"{P}-restore")
    assert sa["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": "rs@p.iam"}
    assert sa["automountServiceAccountToken"] is False
    cron = pod_template(find(objs, "CronJob", f"{P}-backup"))["spec"]
    assert cron["serviceAccountName"] == f"{P}-backup"
    for container in (*spec["initContainers"], *spec["containers"]):
        assert _env(container)["RESTORE_ALLOWED_DATABASES"] == "pganalytics metrics"
    # Without the restore, no restore ServiceAccount.
    plain = _backup(destination={"type": "gcs", "bucket": "pga-b"})
    assert not [
        o
        for o in plain
        if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == f"{P}-restore"
    ]


def test_s3_uploads_write_once_and_lock_when_asked_and_the_restore_reads_with_its_keys():
    destination = {
        "type": "s3",
        "bucket": "pga-b",
        "s3": {
            "endpoint": "https://minio.example.com",
            "existingSecret": "writer-keys",
            "objectLock": {"mode": "COMPLIANCE", "days": 14},
        },
    }
    objs = _backup(
        destination=destination, restore={"enabled": True, "existingSecret": "reader-keys"}
    )
    upload = _env(pod_template(find(objs, "CronJob", f"{P}-backup"))["spec"]["containers"][0])
    assert upload["RCLONE_HEADER_UPLOAD"] == "If-None-Match: *"
    assert upload["RCLONE_CONFIG_BACKUP_OBJECT_LOCK_MODE"] == "COMPLIANCE"
    assert upload["RCLONE_CONFIG_BACKUP_OBJECT_LOCK_RETAIN_UNTIL_DATE"] == "14d"
    assert upload["RCLONE_CONFIG_BACKUP_ACCESS_KEY_ID"]["secretKeyRef"]["name"] == "writer-keys"
    fetch = _env(
        find(objs, "Job", f"{P}-backup-restore-latest")["spec"]["template"]["spec"][
            "initContainers"
        ][0]
    )
    assert (
        "RCLONE_HEADER_UPLOAD" not in fetch and "RCLONE_CONFIG_BACKUP_OBJECT_LOCK_MODE" not in fetch
    )
    assert fetch["RCLONE_CONFIG_BACKUP_ACCESS_KEY_ID"]["secretKeyRef"]["name"] == "reader-keys"
    # writeOnce off (a store that rejects the header); other stores never get it.
    off = _backup(destination={**destination, "s3": {"writeOnce": False}})
    assert "RCLONE_HEADER_UPLOAD" not in _env(
        pod_template(find(off, "CronJob", f"{P}-backup"))["spec"]["containers"][0]
    )
    for other in (
        {"type": "gcs", "bucket": "pga-b"},
        {"type": "azureblob", "bucket": "backups", "azureblob": {"account": "abc12"}},
    ):
        env = _env(
            pod_template(find(_backup(destination=other), "CronJob", f"{P}-backup"))["spec"][
                "containers"
            ][0]
        )
        assert "RCLONE_HEADER_UPLOAD" not in env, other


def test_restore_job_fetches_then_restores_as_superuser():
    objs = _backup(
        destination={"type": "gcs", "bucket": "pga-b"},
        restore={"enabled": True, "stamp": "20260101T021500Z", "dropExisting": True},
        persistence={"enabled": False},
    )
    job = find(objs, "Job", f"{P}-backup-restore-20260101t021500z")
    spec = job["spec"]["template"]["spec"]
    assert job["spec"]["backoffLimit"] == 0
    assert [c["name"] for c in spec["initContainers"]] == ["fetch"]
    assert [c["name"] for c in spec["containers"]] == ["pg-restore"]
    fetch, restore = _env(spec["initContainers"][0]), _env(spec["containers"][0])
    assert fetch["RESTORE_STAMP"] == "20260101T021500Z"
    assert restore["RESTORE_DROP_EXISTING"] == "true"
    assert restore["RESTORE_OWNER"] == "pganalytics"
    assert restore["PGUSER"] == "postgres"
    dumps = next(v for v in spec["volumes"] if v["name"] == "dumps")
    assert dumps["emptyDir"]["sizeLimit"] == "20Gi"


@pytest.mark.parametrize(
    ("backup", "message"),
    [
        ({"destination": {"type": "s3"}}, "backup"),
        ({"destination": {"type": "azureblob", "bucket": "backups"}}, "account"),
        ({"destination": {"type": "ftp", "bucket": "x"}}, "type"),
        ({"restore": {"enabled": True}}, "destination/type"),
        (
            {"destination": {"type": "gcs", "bucket": "pga-b"}, "restore": {"stamp": "yesterday"}},
            "stamp",
        ),
        ({"destination": {"type": "gcs", "bucket": "pga-b", "prefix": "/abs"}}, "prefix"),
    ],
)
def test_schema_refuses_incomplete_backup_values(backup, message):
    with pytest.raises(HelmError) as err:
        _backup(**backup)
    assert message in str(err.value)
