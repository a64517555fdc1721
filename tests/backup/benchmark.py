"""Figures of one backup and restore per emulated store (not a test: a script that prints).

    .venv/bin/python -m tests.backup.benchmark [--metrics-rows N]

Runs the chart's scripts exactly as tests/backup does (Debian PostgreSQL, not TimescaleDB;
emulators on 127.0.0.1) and prints rows, dump sizes and the wall time of each step. Times on
loopback say how long pg_dump / pg_restore and rclone take on this machine, not how long a
cloud upload takes.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from tests.backup.conftest import ScriptRunner, _installed_tools
from tests.backup.data import DATABASES, RESTORE_ENV, drop_databases, fingerprint, seed
from tests.backup.stores import AzureStore, GcsStore, S3Store
from tests.support.postgres import PostgresServer


def _timed(fn) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def run_once(store, tools: dict[str, str], metrics_rows: int) -> dict:
    with PostgresServer() as pg, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scripts = ScriptRunner(pg, tools, work)
        seed(pg, metrics=metrics_rows)
        before = fingerprint(pg)
        benv = store.env(
            **pg.env(), BACKUP_DIR=str(work / "d"), BACKUP_DATABASES=" ".join(DATABASES)
        )
        renv = store.env(**pg.env(), RESTORE_DIR=str(work / "r"), **RESTORE_ENV)
        t_dump = _timed(lambda: scripts.run("backup-dump.sh", benv))
        t_upload = _timed(lambda: scripts.run("backup-upload.sh", benv))
        stamp = (work / "d" / ".current").read_text().strip()
        sizes = {db: (work / "d" / stamp / f"{db}.dump").stat().st_size for db in DATABASES}
        drop_databases(pg)
        t_fetch = _timed(lambda: scripts.run("backup-fetch.sh", renv))
        t_restore = _timed(lambda: scripts.run("backup-restore.sh", renv))
        assert fingerprint(pg) == before, "restored data differs"
        rows = sum(int(v[0]) for v in before.values())
        return {
            "rows": rows,
            "sizes": sizes,
            "dump": t_dump,
            "upload": t_upload,
            "fetch": t_fetch,
            "restore": t_restore,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    tools = _installed_tools()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB"
    )
    for kind, factory in (
        ("s3 (moto)", S3Store),
        ("gcs (gcp-storage-emulator)", GcsStore),
        ("azure (azurite)", lambda: AzureStore(tools["azurite-blob"])),
    ):
        with factory() as store:
            store.create_bucket(tools["rclone"])
            r = run_once(store, tools, args.metrics_rows)
        size = ", ".join(f"{db} {n / 2**10:.0f} KiB" for db, n in r["sizes"].items())
        print(
            f"{kind}: {r['rows']} rows; dumps {size}; dump {r['dump']:.1f}s, "
            f"upload+verify {r['upload']:.1f}s, fetch+verify {r['fetch']:.1f}s, "
            f"restore {r['restore']:.1f}s; restored rows identical"
        )


if __name__ == "__main__":
    main()
