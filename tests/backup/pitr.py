"""Point-in-time recovery with barman-cloud, the tool CloudNativePG's Barman Cloud plugin runs in
its sidecar (barman 3.19.1 in plugin-barman-cloud v0.13.0, the version the program installs),
against the emulators of the backup tier. EMULATOR: the object stores are moto (S3),
gcp-storage-emulator (GCS) and Azurite (Azure Blob) on 127.0.0.1 with their test credentials,
and PostgreSQL is Debian's, not the TimescaleDB image: this proves the archive, base backup,
restore and recovery-target mechanics the plugin drives, not the plugin's own Go code, the
operator, nor a cloud's identity.

    with ArchivingServer(store, archive_timeout=10) as pg:  # archives with barman-cloud-wal-archive
        backup_id = pg.base_backup()                          # barman-cloud-backup
        ...
        with pg.restore(backup_id, target_time="...") as restored:  # barman-cloud-restore
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.backup.stores import AZURITE_ACCOUNT, AZURITE_KEY, BUCKET, LOOPBACK, Store
from tests.support.postgres import SUPERUSER, PostgresServer

# Where the Cluster archives in the bucket (the chart's cloudnativepg.backup.destinationPath).
CNPG_PREFIX = "cnpg"
SERVER_NAME = "pganalytics-db"


def barman_tool(name: str) -> str:
    """A barman-cloud command of this virtualenv (requirements-dev.txt pins barman)."""
    path = Path(sys.executable).with_name(name)
    if not path.is_file():
        raise FileNotFoundError(f"{name} not found beside {sys.executable}: pip install barman")
    return str(path)


def barman_args(store: Store) -> tuple[list[str], str, dict[str, str]]:
    """(options, destination URL, environment) of barman-cloud-* for one emulated store: what the
    ObjectStore's `configuration` becomes, with the emulator's endpoint and test credentials in
    place of the workload identity."""
    if store.kind == "s3":
        return (
            ["--cloud-provider", "aws-s3", "--endpoint-url", f"http://{LOOPBACK}:{store.port}"],
            f"s3://{BUCKET}/{CNPG_PREFIX}",
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
            },
        )
    if store.kind == "gcs":
        return (
            ["--cloud-provider", "google-cloud-storage"],
            f"gs://{BUCKET}/{CNPG_PREFIX}",
            # google-cloud-storage talks to the emulator, anonymously, when this is set.
            {"STORAGE_EMULATOR_HOST": f"http://{LOOPBACK}:{store.port}"},
        )
    endpoint = f"http://{LOOPBACK}:{store.port}/{AZURITE_ACCOUNT}"
    return (
        ["--cloud-provider", "azure-blob-storage"],
        f"{endpoint}/{BUCKET}/{CNPG_PREFIX}",
        {
            "AZURE_STORAGE_CONNECTION_STRING": (
                f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};"
            )
        },
    )


class ArchivingServer(PostgresServer):
    """A PostgreSQL whose WAL is archived to `store` by barman-cloud-wal-archive, as the plugin's
    sidecar archives a Cluster's WAL (`archive_timeout` as the chart sets it)."""

    def __init__(self, store: Store, archive_timeout: int, settings: dict | None = None):
        self.store = store
        self.options, self.destination, self.cloud_env = barman_args(store)
        self.scripts = Path(tempfile.mkdtemp(prefix="pga-barman-"))
        self.scripts.chmod(0o755)
        self.archive_timeout = archive_timeout
        self.sidecar = Sidecar(self)
        (self.scripts / "client.py").write_text(CLIENT)
        archive = self._script("archive.sh", "barman-cloud-wal-archive", '"$1"')
        super().__init__(
            {
                "wal_level": "replica",
                "archive_mode": "on",
                "archive_command": f"'{archive} %p'",
                "archive_timeout": f"{archive_timeout}s",
                "max_wal_senders": "2",
                **(settings or {}),
            }
        )

    def _script(self, name: str, tool: str, tail: str) -> str:
        """The command the server runs (as `postgres`): a client of the sidecar below, as
        CloudNativePG's archive_command calls the plugin's sidecar, which runs barman-cloud."""
        path = self.scripts / name
        path.write_text(
            f"#!/bin/sh\nexec {SYSTEM_PYTHON} {shlex.quote(str(self.scripts / 'client.py'))} "
            f"{shlex.quote(str(self.sidecar.socket))} {tool} {tail}\n"
        )
        path.chmod(0o755)
        return str(path)

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self.sidecar.close()
        shutil.rmtree(self.scripts, ignore_errors=True)

    # -- what the plugin does ------------------------------------------------------------
    def barman(self, tool: str, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [barman_tool(tool), *self.options, *args],
            env={**os.environ, **self.cloud_env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise AssertionError(
                f"{tool} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}\n"
                f"emulator log:\n{self.store.log()}"
            )
        return proc

    def base_backup(self) -> str:
        """barman-cloud-backup (a concurrent backup reading PGDATA, as the sidecar does on the
        instance); returns the backup id."""
        assert self.tmp is not None
        self.barman(
            "barman-cloud-backup",
            "--host",
            str(self.tmp / "sock"),
            "--port",
            str(self.port),
            "--user",
            SUPERUSER,
            # Not waiting for the next spread checkpoint (up to checkpoint_timeout x 0.9): the
            # figures then time the copy, not the wait.
            "--immediate-checkpoint",
            self.destination,
            SERVER_NAME,
        )
        listed = self.barman(
            "barman-cloud-backup-list", "--format", "json", self.destination, SERVER_NAME
        )
        backups = json.loads(listed.stdout)["backups_list"]
        return sorted(b["backup_id"] for b in backups)[-1]

    def switch_wal(self) -> None:
        self.psql("SELECT pg_switch_wal()")

    def wait_archived(self, timeout: float = 120) -> None:
        """Until the server reports the segment it last closed as archived (pg_stat_archiver)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.psql(
                "SELECT coalesce(last_archived_wal,''), coalesce(last_failed_wal,''), "
                "pg_walfile_name(pg_current_wal_lsn()) FROM pg_stat_archiver"
            ).stdout.strip()
            archived, _failed, current = row.split("|")
            if archived and archived >= _previous_segment(current):
                return
            time.sleep(0.2)
        raise AssertionError(
            f"WAL not archived within {timeout}s (pg_stat_archiver: {row}); server log:\n"
            f"{self.server_log()}"
        )

    def server_log(self) -> str:
        assert self.tmp is not None
        log = self.tmp / "server.log"
        return log.read_text(errors="replace")[-4000:] if log.exists() else ""

    def crash(self) -> None:
        """Stops the server as a lost node does (no shutdown checkpoint, no final archive)."""
        self.stop("immediate")

    def restore(
        self, backup_id: str, target_time: str = "", settings: dict | None = None
    ) -> RestoredServer:
        """A new server from `backup_id` and the archived WAL, recovered to `target_time` (or to
        the end of the archive): barman-cloud-restore, then restore_command =
        barman-cloud-wal-restore, as CloudNativePG's `bootstrap.recovery` does."""
        return RestoredServer(self, backup_id, target_time, settings or {})


# The sidecar's client, run by the server's archive/restore commands with the system Python
# (the server runs as `postgres`, which may not reach this virtualenv).
SYSTEM_PYTHON = "/usr/bin/python3"
CLIENT = """import json, os, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
request = {"tool": sys.argv[2], "args": sys.argv[3:], "cwd": os.getcwd()}
sock.sendall(json.dumps(request).encode() + b"\\n")
sys.exit(int(sock.makefile().readline() or 1))
"""


class Sidecar:
    """Runs barman-cloud-wal-archive / -wal-restore for the server, one request per
    connection on a Unix socket: the role of the Barman Cloud plugin's sidecar container."""

    def __init__(self, server: ArchivingServer):
        import socketserver
        import threading

        self.server = server
        self.socket = server.scripts / "sidecar.sock"
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                request = json.loads(self.rfile.readline())
                code = outer.run(request["tool"], request["args"], Path(request["cwd"]))
                self.wfile.write(f"{code}\n".encode())

        self._srv = socketserver.ThreadingUnixStreamServer(str(self.socket), Handler)
        self.socket.chmod(0o777)
        self.calls: list[tuple[str, int, float]] = []
        self.errors: list[str] = []
        threading.Thread(target=self._srv.serve_forever, daemon=True).start()

    def run(self, tool: str, args: list[str], cwd: Path) -> int:
        if tool not in ("barman-cloud-wal-archive", "barman-cloud-wal-restore"):
            return 2
        started = time.monotonic()
        paths = [str(cwd / a) if "/" in a else a for a in args]
        proc = subprocess.run(
            [barman_tool(tool), *self.server.options, self.server.destination, SERVER_NAME, *paths],
            env={**os.environ, **self.server.cloud_env},
            capture_output=True,
            text=True,
            cwd=cwd,
        )
        if proc.returncode == 0 and tool.endswith("restore") and os.geteuid() == 0:
            import pwd

            user = pwd.getpwnam(SUPERUSER)
            os.chown(paths[-1], user.pw_uid, user.pw_gid)
        self.calls.append((tool, proc.returncode, time.monotonic() - started))
        # A restore asks for files the archive cannot have (the next timeline's history, the
        # segment after the last): only a failed archive is an error.
        if proc.returncode != 0 and tool.endswith("archive"):
            self.errors.append(proc.stderr[-2000:])
        return proc.returncode

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()


def lost_on_crash(pg: ArchivingServer, seconds: float, interval: float) -> tuple[int, float]:
    """One insert every `interval` seconds for `seconds` into a new table, then the node is lost
    (immediate stop, nothing more archived) and a copy is restored from the store alone, to the
    end of the archive: (rows that survived, seconds of commits lost)."""
    pg.psql("CREATE TABLE ticks (id int PRIMARY KEY, at timestamptz NOT NULL)")
    backup_id = pg.base_backup()
    started, i = time.monotonic(), 0
    while time.monotonic() - started < seconds:
        i += 1
        pg.psql(f"INSERT INTO ticks VALUES ({i}, clock_timestamp())")
        time.sleep(interval)
    last = pg.psql("SELECT max(at) FROM ticks").stdout.strip()
    pg.crash()
    with pg.restore(backup_id) as restored:
        row = restored.psql(
            f"SELECT count(*), extract(epoch FROM '{last}'::timestamptz - max(at)) FROM ticks"
        ).stdout.strip()
    count, lost = row.split("|")
    return int(count), float(lost)


def _previous_segment(name: str) -> str:
    """The WAL segment before `name` (timeline, log, segment in hex), the last one closed."""
    timeline, log, seg = int(name[:8], 16), int(name[8:16], 16), int(name[16:], 16)
    if seg == 0:
        log, seg = log - 1, 0xFF
    else:
        seg -= 1
    return f"{timeline:08X}{log:08X}{seg:08X}"


class RestoredServer(PostgresServer):
    """The recovered copy: started on its own data directory and port, read-write once the
    recovery target is reached (recovery_target_action = promote)."""

    def __init__(self, origin: ArchivingServer, backup_id: str, target_time: str, settings: dict):
        self.origin = origin
        self.backup_id = backup_id
        self.target_time = target_time
        restore = origin._script("restore.sh", "barman-cloud-wal-restore", '"$1" "$2"')
        recovery = {
            "restore_command": f"'{restore} %f %p'",
            "recovery_target_action": "promote",
            # The restored copy must not write into the origin's archive (CloudNativePG gives
            # the new cluster its own server name).
            "archive_mode": "off",
        }
        if target_time:
            recovery["recovery_target_time"] = f"'{target_time}'"
        super().__init__({**recovery, **settings})
        self.restore_seconds = 0.0

    def __enter__(self) -> RestoredServer:
        started = time.monotonic()
        self.tmp = Path(tempfile.mkdtemp(prefix="pga-pitr-"))
        self.tmp.chmod(0o755)
        data, sock = self.tmp / "data", self.tmp / "sock"
        sock.mkdir()
        self.origin.barman(
            "barman-cloud-restore",
            self.origin.destination,
            SERVER_NAME,
            self.backup_id,
            str(data),
        )
        (data / "recovery.signal").touch()
        if os.geteuid() == 0:
            import pwd

            user = pwd.getpwnam(SUPERUSER)
            for root, dirs, files in os.walk(self.tmp):
                for name in [*dirs, *files]:
                    os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid)
            os.chown(self.tmp, user.pw_uid, user.pw_gid)
            self._run_as = ["runuser", "-u", SUPERUSER, "--"]
        data.chmod(0o700)
        self._start(timeout=3600)
        self._wait_promoted()
        self.restore_seconds = time.monotonic() - started
        return self

    def _wait_promoted(self, timeout: float = 3600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.psql("SELECT pg_is_in_recovery()", check=False)
            if row.returncode == 0 and row.stdout.strip() == "f":
                return
            time.sleep(0.2)
        raise AssertionError(f"recovery did not finish in {timeout}s:\n{self.server_log()}")

    def server_log(self) -> str:
        assert self.tmp is not None
        log = self.tmp / "server.log"
        return log.read_text(errors="replace")[-4000:] if log.exists() else ""
