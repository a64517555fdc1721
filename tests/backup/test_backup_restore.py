"""Backup and restore, end to end, with the chart's own scripts as processes:

    seed rows -> backup-dump.sh -> backup-upload.sh (to an emulated S3 / GCS / Azure Blob)
    -> drop the databases -> backup-fetch.sh -> backup-restore.sh -> compare every row.

The database is Debian's PostgreSQL, not TimescaleDB: the scripts' TimescaleDB branch
(timescaledb_pre_restore / timescaledb_post_restore) is not exercised here, and the
emulators do not check identities, encryption, versioning or lifecycle rules (see
docs/BACKUP_RESTORE.md, "What the tests prove").
"""

from __future__ import annotations

from tests.backup.data import APP_ROLE, DATABASES, RESTORE_ENV, drop_databases, fingerprint, seed


def _backup(scripts, store, work):
    env = store.env(**scripts.pg.env(), BACKUP_DIR=str(work), BACKUP_DATABASES=" ".join(DATABASES))
    scripts.run("backup-dump.sh", env)
    upload = scripts.run("backup-upload.sh", env)
    return (work / ".current").read_text().strip(), upload


def _restore(scripts, store, work, **extra):
    env = store.env(**scripts.pg.env(), RESTORE_DIR=str(work), **RESTORE_ENV, **extra)
    scripts.run("backup-fetch.sh", env)
    return scripts.run("backup-restore.sh", env)


def test_backup_drop_restore_gives_back_every_row(scripts, store, tmp_path):
    pg = scripts.pg
    seed(pg)
    before = fingerprint(pg)
    assert before["metrics.query_stats"][0] == "50000"

    stamp, upload = _backup(scripts, store, tmp_path / "dumps")
    assert "complete" in upload.stdout
    listed = scripts.rclone_cmd(store, "lsf", f"{store.remote}/{stamp}/").stdout.split()
    assert sorted(listed) == sorted(
        ["SHA256SUMS", "backup.info", *(f"{db}.dump" for db in DATABASES)]
    )

    drop_databases(pg)
    assert not pg.psql("SELECT 1 FROM pg_database WHERE datname = 'metrics'").stdout.strip()

    restore = _restore(scripts, store, tmp_path / "restore")
    assert "complete" in restore.stdout
    assert fingerprint(pg) == before
    # The restored databases belong to the application role again.
    owners = pg.psql(
        "SELECT string_agg(datname || ':' || pg_get_userbyid(datdba), ',' ORDER BY datname)"
        " FROM pg_database WHERE datname IN ('pganalytics', 'metrics')"
    ).stdout.strip()
    assert owners == f"metrics:{APP_ROLE},pganalytics:{APP_ROLE}"
    # The application can write again (sequences restored with their positions).
    pg.psql(
        "INSERT INTO users (email) VALUES ('after-restore@example.com')",
        db="pganalytics",
        user=APP_ROLE,
        password="app-secret-for-tests",
    )


def test_latest_is_the_newest_complete_backup(scripts, s3_store, tmp_path):
    pg = scripts.pg
    seed(pg, metrics=1_000)
    first, _ = _backup(scripts, s3_store, tmp_path / "a")
    pg.psql("INSERT INTO query_stats SELECT now(), 1, 1, 1, 1", db="metrics")
    second_env = {"BACKUP_STAMP": "29990101T000000Z"}
    env = s3_store.env(
        **pg.env(), BACKUP_DIR=str(tmp_path / "b"), BACKUP_DATABASES=" ".join(DATABASES)
    )
    scripts.run("backup-dump.sh", {**env, **second_env})
    # An upload that died before backup.info: newer, but incomplete, so never "latest".
    scripts.rclone_cmd(
        s3_store,
        "copyto",
        str(tmp_path / "b" / "29990101T000000Z" / "metrics.dump"),
        f"{s3_store.remote}/29990101T000000Z/metrics.dump",
    )
    drop_databases(pg)
    _restore(scripts, s3_store, tmp_path / "restore")
    assert (tmp_path / "restore" / ".current").read_text().strip() == first
    assert pg.psql("SELECT count(*) FROM query_stats", db="metrics").stdout.strip() == "1000"


def test_restore_refuses_a_database_with_tables(scripts, s3_store, tmp_path):
    pg = scripts.pg
    seed(pg, metrics=100)
    _backup(scripts, s3_store, tmp_path / "dumps")
    env = s3_store.env(**pg.env(), RESTORE_DIR=str(tmp_path / "r"), **RESTORE_ENV)
    scripts.run("backup-fetch.sh", env)
    refused = scripts.run("backup-restore.sh", env, check=False)
    assert refused.returncode != 0
    assert "RESTORE_DROP_EXISTING=true" in refused.stderr
    pg.psql("INSERT INTO query_stats SELECT now(), 1, 1, 1, 1", db="metrics")
    scripts.run("backup-restore.sh", {**env, "RESTORE_DROP_EXISTING": "true"})
    assert pg.psql("SELECT count(*) FROM query_stats", db="metrics").stdout.strip() == "100"
