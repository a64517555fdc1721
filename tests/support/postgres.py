"""A throwaway PostgreSQL server on 127.0.0.1 for tests that need a real database.

The server comes from the machine's PostgreSQL packages (Debian `postgresql`, installed by
`scripts/test.sh` when missing). It is not the TimescaleDB image the chart runs: tests that use
it say so, and the TimescaleDB extension is not available here.

    with PostgresServer() as pg:
        pg.psql("SELECT 1")                       # as the superuser `postgres`
        pg.url("pganalytics", "secret", "pganalytics")

PostgreSQL refuses to run as root; under root the server runs as the `postgres` system user
(created by the Debian package). Data and sockets live in a temporary directory removed on exit.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "postgres"
LOOPBACK = "127.0.0.1"


class PostgresNotInstalled(RuntimeError):
    pass


def pg_bindir() -> Path:
    """The newest installed PostgreSQL server's bin directory (with initdb and pg_ctl)."""
    override = os.environ.get("PGA_PG_BINDIR")
    candidates = (
        [override]
        if override
        else sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    )
    for d in reversed(candidates):
        if d and (Path(d) / "initdb").is_file() and (Path(d) / "pg_ctl").is_file():
            return Path(d)
    raise PostgresNotInstalled(
        "no PostgreSQL server (initdb, pg_ctl) found under /usr/lib/postgresql/*/bin. "
        "Install it: apt-get install postgresql (scripts/test.sh does this as root), "
        "or set PGA_PG_BINDIR to a directory that has initdb and pg_ctl."
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class PostgresServer:
    """Starts on enter, stops and deletes its data on exit. `version` is the server's major."""

    def __init__(self, settings: dict[str, str] | None = None):
        self.bindir = pg_bindir()
        self.version = int(self.bindir.parent.name)
        self.settings = settings or {}
        self.port = 0
        self.tmp: Path | None = None
        self._run_as: list[str] = []

    # -- process helpers ---------------------------------------------------------------
    def _cmd(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self._run_as, *args], check=check, capture_output=True, text=True, **kw
        )

    def __enter__(self) -> PostgresServer:
        self.tmp = Path(tempfile.mkdtemp(prefix="pga-pg-"))
        self.tmp.chmod(0o755)
        data, sock = self.tmp / "data", self.tmp / "sock"
        data.mkdir()
        sock.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam(SUPERUSER)
            for p in (self.tmp, data, sock):
                os.chown(p, user.pw_uid, user.pw_gid)
            self._run_as = ["runuser", "-u", SUPERUSER, "--"]
        self._cmd(
            str(self.bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth=trust",  # loopback only, throwaway data: tests choose their own roles
            "--encoding=UTF8",
            "--locale=C",
        )
        self._start()
        return self

    def _start(self, timeout: int = 60) -> None:
        """pg_ctl start on `tmp/data` (a new port, the socket in `tmp/sock`, `settings`); a
        server that does not come up is torn down and its log raised."""
        assert self.tmp is not None
        data, sock = self.tmp / "data", self.tmp / "sock"
        self.port = _free_port()
        opts = [
            f"-c listen_addresses={LOOPBACK}",
            f"-c port={self.port}",
            f"-c unix_socket_directories={sock}",
            "-c fsync=off",
            *(f"-c {k}={v}" for k, v in self.settings.items()),
        ]
        try:
            self._cmd(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(self.tmp / "server.log"),
                "-o",
                " ".join(opts),
                "-w",
                "-t",
                str(timeout),
                "start",
            )
        except subprocess.CalledProcessError as exc:
            log = (
                (self.tmp / "server.log").read_text() if (self.tmp / "server.log").exists() else ""
            )
            self.__exit__(None, None, None)
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log}") from None

    def __exit__(self, *exc) -> None:
        if self.tmp is None:
            return
        self.stop("immediate")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (pg_ctl -m mode), keeping its data directory."""
        if self.port:
            self._cmd(
                str(self.bindir / "pg_ctl"), "-D", str(self.tmp / "data"), "-m", mode, "-w",
                "stop", check=False,
            )  # fmt: skip
            self.port = 0
        self.tmp = None

    # -- client helpers ----------------------------------------------------------------
    def url(self, user: str = SUPERUSER, password: str = "", db: str = "postgres") -> str:
        auth = f"{user}:{password}@" if password else f"{user}@"
        return f"postgresql://{auth}{LOOPBACK}:{self.port}/{db}"

    def env(self, user: str = SUPERUSER, password: str = "", db: str = "postgres") -> dict:
        """Environment for libpq clients (psql, pg_dump, pg_restore) as `user` on `db`."""
        # The superuser without a password comes in through the Unix socket (trust); every
        # other client over TCP, as a pod would.
        host = str(self.tmp / "sock") if (user == SUPERUSER and not password) else LOOPBACK
        env = {
            **os.environ,
            "PGHOST": host,
            "PGPORT": str(self.port),
            "PGUSER": user,
            "PGDATABASE": db,
        }
        if password:
            env["PGPASSWORD"] = password
        return env

    def psql(
        self,
        sql: str,
        user: str = SUPERUSER,
        db: str = "postgres",
        password: str = "",
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        """Runs SQL through psql (ON_ERROR_STOP, unaligned tuples-only output)."""
        return subprocess.run(
            [str(self.bindir / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            env=self.env(user, password, db),
            capture_output=True,
            text=True,
            check=check,
        )

    def require_passwords(self) -> None:
        """Switches loopback TCP auth from trust to scram-sha-256, so wrong passwords fail."""
        assert self.tmp is not None
        hba = self.tmp / "data" / "pg_hba.conf"
        hba.write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        self.psql("SELECT pg_reload_conf()")
