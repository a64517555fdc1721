"""Figures of the CloudNativePG backup path on this machine, per emulated object store
(EMULATOR: moto, gcp-storage-emulator, Azurite on 127.0.0.1; Debian's PostgreSQL): the data at
risk with a given archive_timeout, and the time to restore a 1 GiB database (download of the
base backup + WAL replay) with barman-cloud, as the Barman Cloud plugin does.

    .venv/bin/python -m tests.backup.pitr_benchmark                      # all three stores
    .venv/bin/python -m tests.backup.pitr_benchmark --stores s3 --archive-timeout 300

Loopback figures: they show what the tools cost on this CPU, not a cloud's network.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from tests.backup.conftest import _installed_tools
from tests.backup.pitr import ArchivingServer, lost_on_crash
from tests.backup.stores import AzureStore, GcsStore, S3Store

ROWS = 10_000_000


def machine() -> str:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.node()}: {os.cpu_count()} cores, {pages / 2**30:.0f} GiB, "
        f"load average {load}, {platform.python_implementation()} {platform.python_version()}"
    )


def open_store(kind: str, tools: dict[str, str]):
    store = {"s3": S3Store, "gcs": GcsStore}[kind]() if kind != "azure" else None
    return store or AzureStore(tools["azurite-blob"])


def data_at_risk(kind: str, tools: dict[str, str], archive_timeout: int) -> dict:
    """One insert a second for 3 x archive_timeout, then the node is lost: seconds of commits
    the archive does not have."""
    with open_store(kind, tools) as store:
        store.create_bucket(tools["rclone"])
        with ArchivingServer(store, archive_timeout=archive_timeout) as pg:
            _, lost = lost_on_crash(pg, 3 * archive_timeout, 1)
            uploads = [s for t, rc, s in pg.sidecar.calls if t.endswith("archive") and rc == 0]
    return {
        "lost_s": lost,
        "segments": len(uploads),
        "upload_max_s": max(uploads),
        "upload_avg_s": sum(uploads) / len(uploads),
    }


def restore_one_gib(kind: str, tools: dict[str, str]) -> dict:
    """A 1 GiB database, a base backup, then a restore to the end of the archive."""
    with open_store(kind, tools) as store:
        store.create_bucket(tools["rclone"])
        with ArchivingServer(store, archive_timeout=60) as pg:
            pg.psql("CREATE TABLE filler (id bigint, pad text)")
            # At least 1 GiB of heap: 10 M rows of 2 x md5 text (7.2 M made 0.74 GiB).
            pg.psql(
                f"INSERT INTO filler SELECT g, md5(g::text) || md5((g * 7)::text) "
                f"FROM generate_series(1, {ROWS}) g"
            )
            size = int(pg.psql("SELECT pg_database_size(current_database())").stdout)
            assert size >= 2**30, f"{size / 2**30:.2f} GiB: raise ROWS"
            started = time.monotonic()
            backup_id = pg.base_backup()
            backup_s = time.monotonic() - started
            pg.switch_wal()
            pg.wait_archived(timeout=600)
            with pg.restore(backup_id) as restored:
                rows = int(restored.psql("SELECT count(*) FROM filler").stdout)
                restore_s = restored.restore_seconds
    assert rows == ROWS, rows
    return {"db_gib": size / 2**30, "backup_s": backup_s, "restore_s": restore_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", nargs="+", default=["s3", "gcs", "azure"])
    parser.add_argument("--archive-timeout", type=int, default=60, help="seconds")
    parser.add_argument("--skip-restore", action="store_true")
    parser.add_argument("--skip-rpo", action="store_true")
    args = parser.parse_args()
    tools = _installed_tools()
    print(f"machine: {machine()}", flush=True)
    print("EMULATOR: object stores on loopback; PostgreSQL 15 from Debian; barman-cloud 3.19.1")
    for kind in args.stores:
        if not args.skip_rpo:
            risk = data_at_risk(kind, tools, args.archive_timeout)
            print(
                f"{kind}: archive_timeout {args.archive_timeout}s: data lost on a node loss "
                f"{risk['lost_s']:.1f}s; {risk['segments']} segments archived, upload "
                f"avg {risk['upload_avg_s']:.2f}s max {risk['upload_max_s']:.2f}s",
                flush=True,
            )
        if not args.skip_restore:
            r = restore_one_gib(kind, tools)
            print(
                f"{kind}: {r['db_gib']:.2f} GiB database: base backup {r['backup_s']:.0f}s, "
                f"restore (download + replay) {r['restore_s']:.0f}s",
                flush=True,
            )
        print(f"machine after {kind}: {machine()}", flush=True)


if __name__ == "__main__":
    main()
