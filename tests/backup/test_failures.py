"""A backup that cannot be trusted must fail loudly: the scripts exit non-zero (so the Job
fails and its status shows it) and nothing incomplete passes for a backup."""

from __future__ import annotations

import pytest

from tests.backup.data import DATABASES, RESTORE_ENV, seed
from tests.backup.proxy import CorruptingProxy


def _dump(scripts, store, work):
    env = store.env(**scripts.pg.env(), BACKUP_DIR=str(work), BACKUP_DATABASES=" ".join(DATABASES))
    scripts.run("backup-dump.sh", env)
    return env, (work / ".current").read_text().strip()


def _flip_byte(path, offset=-100):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_dump_is_not_uploaded(scripts, s3_store, tmp_path):
    seed(scripts.pg, metrics=2_000)
    env, stamp = _dump(scripts, s3_store, tmp_path)
    _flip_byte(tmp_path / stamp / "metrics.dump")
    result = scripts.run("backup-upload.sh", env, check=False)
    assert result.returncode != 0
    assert "does not match its SHA256SUMS" in result.stderr
    assert scripts.rclone_cmd(s3_store, "lsf", "-R", f"{s3_store.remote}/").stdout == ""


def test_a_missing_bucket_fails_the_upload(scripts, s3_store, tmp_path):
    seed(scripts.pg, metrics=100)
    env, _ = _dump(scripts, s3_store, tmp_path)
    env["BACKUP_REMOTE"] = "backup:no-such-bucket/pganalytics"
    env["RCLONE_S3_NO_CHECK_BUCKET"] = "true"
    result = scripts.run("backup-upload.sh", env, check=False)
    assert result.returncode != 0
    assert "complete" not in result.stdout


def test_verify_download_reads_every_object_back(scripts, s3_store, tmp_path):
    seed(scripts.pg, metrics=2_000)
    env, _ = _dump(scripts, s3_store, tmp_path)
    result = scripts.run("backup-upload.sh", {**env, "BACKUP_VERIFY": "download"})
    assert result.stdout.count("verified") == len(DATABASES) + 2
    bad = scripts.run("backup-upload.sh", {**env, "BACKUP_VERIFY": "sometimes"}, check=False)
    assert bad.returncode != 0
    assert "BACKUP_VERIFY must be checksum or download" in bad.stderr


def test_an_object_changed_in_the_store_fails_the_restore(scripts, s3_store, tmp_path):
    seed(scripts.pg, metrics=2_000)
    env, stamp = _dump(scripts, s3_store, tmp_path / "dumps")
    scripts.run("backup-upload.sh", env)
    # Replace the uploaded dump with a damaged copy, as bit rot or tampering would.
    damaged = tmp_path / "metrics.dump"
    damaged.write_bytes((tmp_path / "dumps" / stamp / "metrics.dump").read_bytes())
    _flip_byte(damaged)
    scripts.rclone_cmd(s3_store, "copyto", str(damaged), f"{s3_store.remote}/{stamp}/metrics.dump")
    renv = s3_store.env(**scripts.pg.env(), RESTORE_DIR=str(tmp_path / "r"), **RESTORE_ENV)
    result = scripts.run("backup-fetch.sh", renv, check=False)
    assert result.returncode != 0
    assert "does not match its SHA256SUMS" in result.stderr
    # Nothing is handed to the restore step.
    assert not (tmp_path / "r" / ".current").exists()


@pytest.mark.parametrize(
    ("rclone_env", "message"),
    [
        # rclone compares the store's MD5 with its own after the transfer ...
        ({}, "corrupted on transfer"),
        # ... and the script compares again, independently of rclone's check.
        ({"RCLONE_IGNORE_CHECKSUM": "true"}, "backup-upload: checksum mismatch"),
    ],
)
def test_an_upload_damaged_in_transit_fails(scripts, s3_store, tmp_path, rclone_env, message):
    seed(scripts.pg, metrics=2_000)
    env, stamp = _dump(scripts, s3_store, tmp_path)
    with CorruptingProxy(s3_store.port) as proxy:
        env["RCLONE_CONFIG_BACKUP_ENDPOINT"] = f"http://127.0.0.1:{proxy.port}"
        result = scripts.run("backup-upload.sh", {**env, **rclone_env}, check=False)
    assert proxy.damaged >= 1, "the proxy damaged nothing: the test would prove nothing"
    assert result.returncode != 0
    assert message in result.stderr
    assert "complete" not in result.stdout
    # No backup.info: the backup is incomplete and never taken as `latest`.
    listed = scripts.rclone_cmd(s3_store, "lsf", f"{s3_store.remote}/{stamp}/", check=False)
    assert "backup.info" not in listed.stdout
