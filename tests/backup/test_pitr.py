"""Point-in-time recovery as the CloudNativePG Cluster does it through the Barman Cloud plugin:
WAL archived continuously by barman-cloud-wal-archive (with `archive_timeout`), a base backup by
barman-cloud-backup, a new server restored by barman-cloud-restore and replaying the archive
with barman-cloud-wal-restore up to a `recovery_target_time`.

EMULATOR: moto (S3), gcp-storage-emulator (GCS) and Azurite (Azure Blob) on 127.0.0.1, and
Debian's PostgreSQL, not TimescaleDB (tests/backup/pitr.py says what that leaves unproven).
"""

from __future__ import annotations

import time

import pytest

from tests.backup.pitr import ArchivingServer, lost_on_crash

pytestmark = pytest.mark.timeout(600)

ROWS = "SELECT string_agg(id || ':' || note, ',' ORDER BY id) FROM events"


def write(pg, first: int, last: int, note: str) -> None:
    pg.psql(
        f"INSERT INTO events (id, note) SELECT g, '{note}' FROM generate_series({first}, {last}) g"
    )


def test_restore_to_a_time_between_two_writes(store):
    """Rows written before the target time are back, rows written after it are not, on every
    emulated store; the restored server accepts writes (it was promoted)."""
    with ArchivingServer(store, archive_timeout=10) as pg:
        pg.psql(
            "CREATE TABLE events (id int PRIMARY KEY, note text, "
            "at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        write(pg, 1, 500, "before-backup")
        backup_id = pg.base_backup()
        write(pg, 501, 1000, "after-backup")
        time.sleep(1.2)
        target = pg.psql("SELECT clock_timestamp()").stdout.strip()
        time.sleep(1.2)
        write(pg, 1001, 1500, "after-target")
        pg.psql("DELETE FROM events WHERE id <= 100")  # a mistake to undo
        pg.switch_wal()
        pg.wait_archived()

        with pg.restore(backup_id, target_time=target) as restored:
            expected = [f"{i}:before-backup" for i in range(1, 501)]
            expected += [f"{i}:after-backup" for i in range(501, 1001)]
            assert restored.psql(ROWS).stdout.strip() == ",".join(expected)
            summary = restored.psql("SELECT count(*), min(id), max(id) FROM events").stdout
            assert summary.strip() == "1000|1|1000"
            restored.psql("INSERT INTO events (id, note) VALUES (2000, 'after-restore')")
    assert not pg.sidecar.errors, pg.sidecar.errors


def test_data_at_risk_is_bounded_by_archive_timeout(s3_store):
    """A steady trickle of writes, then the server and its disk are lost (immediate stop, data
    directory discarded): what the archive restores reaches to within archive_timeout (plus the
    time one segment takes to upload) of the last commit."""
    archive_timeout = 5
    with ArchivingServer(s3_store, archive_timeout=archive_timeout) as pg:
        count, lost_seconds = lost_on_crash(pg, 4 * archive_timeout, 0.25)
    upload = max(seconds for tool, _, seconds in pg.sidecar.calls if tool.endswith("archive"))
    assert count > 0
    assert lost_seconds <= archive_timeout + upload + 1, (count, lost_seconds, upload)
