"""The bucket is not trusted (issue 18 item 6): what someone who can write to it plants or
changes is never restored, an existing backup is never written over, and database names from
a backup go nowhere near SQL unchecked. The chart's scripts run as processes against real
PostgreSQL and the emulators (moto for S3, gcp-storage-emulator, Azurite).

What the emulators prove here: the scripts' own checks (which stamp is "latest", what
verifies, which names pass), that rclone sends `If-None-Match: *` and stops on the store's
412, and that rclone's uploads work in a bucket with S3 Object Lock as moto models it (default
retention, per-object retention, a locked version that cannot be deleted). What only a real
cloud proves: IAM (the writer's and the restore identity's permissions, the bucket policy
that requires If-None-Match), GCS's objectCreator refusing an overwrite, Azure's container
retention policy and custom role, and Object Lock as AWS enforces it (moto's is a model).
"""

from __future__ import annotations

import subprocess

import boto3
import pytest

from tests.backup.data import DATABASES, RESTORE_ENV, drop_databases, seed
from tests.backup.stores import BUCKET, PREFIX, S3Store
from tests.chart.conftest import find, pod_template, render

FUTURE = "99991231T235959Z"


def _backup(scripts, store, work, stamp=None):
    env = store.env(**scripts.pg.env(), BACKUP_DIR=str(work), BACKUP_DATABASES=" ".join(DATABASES))
    if stamp:
        env["BACKUP_STAMP"] = stamp
    scripts.run("backup-dump.sh", env)
    scripts.run("backup-upload.sh", env)
    return (work / ".current").read_text().strip()


def _restore_env(scripts, store, work, **extra):
    return store.env(**scripts.pg.env(), RESTORE_DIR=str(work), **RESTORE_ENV, **extra)


def _plant(scripts, store, source, stamp, edit=None):
    """Uploads the files of a local backup directory under `stamp/`, as anyone who can write
    to the bucket could: `edit(name, bytes) -> bytes or None` changes a file on the way, or
    leaves it out."""
    for path in sorted(source.iterdir()):
        data = path.read_bytes()
        data = edit(path.name, data) if edit else data
        if data is None:
            continue
        planted = source.parent / f"planted-{stamp}-{path.name}"
        planted.write_bytes(data)
        scripts.rclone_cmd(store, "copyto", str(planted), f"{store.remote}/{stamp}/{path.name}")


def _sums(directory, names) -> bytes:
    out = subprocess.run(
        ["sha256sum", *names], cwd=directory, capture_output=True, check=True
    ).stdout
    return out


def _upload_env(**s3) -> dict[str, str]:
    """The plain env of the chart's upload container for an S3 destination: what the chart,
    not this test, tells rclone."""
    destination = {"type": "s3", "bucket": "pga-b", "s3": {"region": "us-east-1", **s3}}
    objs = render(values={"backup": {"enabled": True, "destination": destination}})
    upload = pod_template(find(objs, "CronJob", "pga-pganalytics-backup"))["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in upload["env"] if "value" in e}


def _rows(pg) -> str:
    return pg.psql("SELECT count(*) FROM query_stats", db="metrics").stdout.strip()


def test_a_planted_future_backup_is_never_latest(scripts, store, tmp_path):
    """A complete, self-consistent backup under 99991231T235959Z/ (its own backup.info and
    SHA256SUMS, every dump matching) is dated in the future: "latest" skips it."""
    pg = scripts.pg
    seed(pg, metrics=300)
    real = _backup(scripts, store, tmp_path / "real")
    # The attacker's data: another backup of other rows, renamed to a future stamp.
    pg.psql(
        "INSERT INTO query_stats SELECT now(), 1, 1, 1, 1 FROM generate_series(1, 77)", db="metrics"
    )
    other = tmp_path / "other"
    _backup(scripts, store, other, stamp="20000101T000000Z")
    source = other / "20000101T000000Z"
    info = (source / "backup.info").read_bytes().replace(b"20000101T000000Z", FUTURE.encode())
    (source / "backup.info").write_bytes(info)
    _plant(scripts, store, source, FUTURE)
    drop_databases(pg)
    env = _restore_env(scripts, store, tmp_path / "r")
    fetched = scripts.run("backup-fetch.sh", env)
    assert f"skipping {FUTURE}/: dated in the future" in fetched.stderr
    assert (tmp_path / "r" / ".current").read_text().strip() == real
    scripts.run("backup-restore.sh", env)
    assert _rows(pg) == "300"
    # Named explicitly, it is refused too: its stamp is not the kind a backup has now.
    named = scripts.run("backup-fetch.sh", {**env, "RESTORE_STAMP": FUTURE}, check=False)
    assert named.returncode != 0


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("dump-changed", "a dump does not match its SHA256SUMS"),
        ("copied-from-another-stamp", "backup.info names another stamp than its directory"),
        ("extra-database", "backup.info names a database this release does not restore"),
        ("no-backup-info", "no backup.info (an incomplete upload)"),
    ],
)
def test_latest_is_the_newest_backup_that_verifies(scripts, s3_store, tmp_path, case, why):
    pg = scripts.pg
    seed(pg, metrics=200)
    good = _backup(scripts, s3_store, tmp_path / "good", stamp="20260101T000000Z")
    source = tmp_path / "good" / good
    newer = "20260102T000000Z"

    def edit(name, data):
        if name == "backup.info":
            if case == "no-backup-info":
                return None
            if case == "extra-database":
                data = data.replace(b"=pganalytics metrics\n", b"=pganalytics metrics postgres\n")
            return (
                data
                if case == "copied-from-another-stamp"
                else data.replace(good.encode(), newer.encode())
            )
        if case == "dump-changed" and name == "metrics.dump":
            return data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:]
        if case == "extra-database" and name == "SHA256SUMS":
            return data + _sums(source, ["metrics.dump"]).replace(b"metrics.dump", b"postgres.dump")
        return data

    _plant(scripts, s3_store, source, newer, edit)
    env = _restore_env(scripts, s3_store, tmp_path / "r")
    fetched = scripts.run("backup-fetch.sh", env)
    assert f"skipping {newer}: {why}" in fetched.stderr, fetched.stderr
    assert (tmp_path / "r" / ".current").read_text().strip() == good
    refused = scripts.run("backup-fetch.sh", {**env, "RESTORE_STAMP": newer}, check=False)
    assert refused.returncode == 1 and why in refused.stderr, refused.stderr


@pytest.mark.parametrize(
    "databases",
    [
        "metrics postgres",  # dropping `postgres` would take the server's own database
        'metrics"; DROP DATABASE pganalytics; --',
        "../../etc",
        "metrics template1",
    ],
)
def test_a_bad_database_name_from_a_backup_never_reaches_sql(
    scripts, s3_store, tmp_path, databases
):
    """backup.info's `databases=` went unchecked into `psql -d`, DROP DATABASE and a file
    path. Now fetch refuses such a backup, and restore refuses the names even when they
    reach it (RESTORE_DATABASES, a hand-made download), before anything is dropped."""
    pg = scripts.pg
    seed(pg, metrics=100)
    stamp = _backup(scripts, s3_store, tmp_path / "b")
    work = tmp_path / "r"
    env = _restore_env(scripts, s3_store, work)
    scripts.run("backup-fetch.sh", env)
    # The downloaded copy is edited as a hand-made one could be, after fetch verified it.
    info = work / stamp / "backup.info"
    info.write_text(
        info.read_text().replace("databases=pganalytics metrics", f"databases={databases}")
    )
    refused = scripts.run(
        "backup-restore.sh", {**env, "RESTORE_DROP_EXISTING": "true"}, check=False
    )
    assert refused.returncode == 1 and "nothing was restored" in refused.stderr, refused.stderr
    assert _rows(pg) == "100", "a database was dropped before the names were checked"
    listed = pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'postgres'").stdout.strip()
    assert listed == "1"
    also = scripts.run(
        "backup-restore.sh",
        {**env, "RESTORE_DROP_EXISTING": "true", "RESTORE_DATABASES": "postgres"},
        check=False,
    )
    assert also.returncode == 1 and "invalid database name 'postgres'" in also.stderr


def test_a_stamp_already_in_the_store_is_not_written_again(scripts, store, tmp_path):
    seed(scripts.pg, metrics=100)
    stamp = _backup(scripts, store, tmp_path / "a", stamp="20260101T010101Z")
    env = store.env(
        **scripts.pg.env(), BACKUP_DIR=str(tmp_path / "b"), BACKUP_DATABASES=" ".join(DATABASES)
    )
    scripts.run("backup-dump.sh", {**env, "BACKUP_STAMP": stamp})
    again = scripts.run("backup-upload.sh", env, check=False)
    assert again.returncode == 1
    assert "already holds a backup; refusing to write over it" in again.stderr


def test_s3_uploads_carry_if_none_match_so_an_existing_key_is_never_overwritten(
    scripts, s3_store, tmp_path
):
    """The chart sets RCLONE_HEADER_UPLOAD='If-None-Match: *' for S3 (backup.destination.s3
    .writeOnce). moto answers 412 Precondition Failed to a PUT of an existing key with it, as
    S3 does (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html);
    without it the object is silently replaced. The bucket policy that makes the header
    mandatory (components/backup/aws.py) is IAM, which moto does not enforce."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"the backup")
    second.write_bytes(b"a replacement")
    key = f"{s3_store.remote}/20260101T000000Z/metrics.dump"
    once = s3_store.env(RCLONE_HEADER_UPLOAD=_upload_env()["RCLONE_HEADER_UPLOAD"])
    subprocess.run([scripts.rclone, "copyto", str(first), key], env=once, check=True)
    refused = subprocess.run(
        [scripts.rclone, "copyto", "--retries", "1", str(second), key],
        env=once, capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode != 0 and "PreconditionFailed" in refused.stderr, refused.stderr
    assert scripts.rclone_cmd(s3_store, "cat", key).stdout == "the backup"
    # The header is what protects it: without it the same copy replaces the object.
    subprocess.run([scripts.rclone, "copyto", str(second), key], env=s3_store.env(), check=True)
    assert scripts.rclone_cmd(s3_store, "cat", key).stdout == "a replacement"


def _locked_bucket(store: S3Store, default_days: int | None):
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{store.port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=f"{BUCKET}-locked", ObjectLockEnabledForBucket=True)
    if default_days:
        client.put_object_lock_configuration(
            Bucket=f"{BUCKET}-locked",
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": default_days}},
            },
        )
    return client


@pytest.mark.parametrize("how", ["bucket-default", "per-object"])
def test_backups_upload_into_an_object_lock_bucket_and_stay_locked(
    scripts, s3_store, tmp_path, how
):
    """aws: the program sets the bucket's default retention (backup.lockDays); existing: the
    chart makes rclone set Object Lock on each upload (backup.destination.s3.objectLock,
    RCLONE_CONFIG_BACKUP_OBJECT_LOCK_*). Either way each uploaded version carries a retention
    date and deleting it is refused: moto's model of S3 Object Lock
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html)."""
    client = _locked_bucket(s3_store, 1 if how == "bucket-default" else None)
    seed(scripts.pg, metrics=100)
    extra = {"BACKUP_REMOTE": f"backup:{BUCKET}-locked/{PREFIX}"}
    if how == "per-object":
        chart = _upload_env(objectLock={"mode": "GOVERNANCE", "days": 1})
        extra |= {
            k: v for k, v in chart.items() if k.startswith("RCLONE_CONFIG_BACKUP_OBJECT_LOCK")
        }
        assert len(extra) == 3, chart
    env = s3_store.env(
        **scripts.pg.env(), **extra, BACKUP_DIR=str(tmp_path), BACKUP_DATABASES=" ".join(DATABASES)
    )
    scripts.run("backup-dump.sh", env)
    scripts.run("backup-upload.sh", env)
    stamp = (tmp_path / ".current").read_text().strip()
    key = f"{PREFIX}/{stamp}/metrics.dump"
    head = client.head_object(Bucket=f"{BUCKET}-locked", Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"]
    with pytest.raises(client.exceptions.ClientError) as denied:
        client.delete_object(Bucket=f"{BUCKET}-locked", Key=key, VersionId=head["VersionId"])
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
