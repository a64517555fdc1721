"""Fixtures of the backup tier: the chart's backup scripts run as processes against a real
PostgreSQL (tests/support/postgres.py: Debian's PostgreSQL, NOT TimescaleDB) and a local
object-store emulator per cloud (tests/backup/stores.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.backup.stores import AzureStore, GcsStore, S3Store

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "charts" / "pganalytics" / "files" / "backup"
TOOLS_SCRIPT = ROOT / "scripts" / "backup-test-tools.sh"


def _installed_tools() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(TOOLS_SCRIPT), "list"], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


@pytest.fixture(scope="session")
def backup_tools() -> dict[str, str]:
    """rclone (the uploader image's version) and Azurite; fails, never skips, when missing."""
    tools = _installed_tools()
    missing = {"rclone", "azurite-blob"} - set(tools)
    if missing:
        pytest.fail(
            f"{', '.join(sorted(missing))} not installed: run scripts/backup-test-tools.sh",
            pytrace=False,
        )
    return tools


@pytest.fixture(params=["s3", "gcs", "azure"])
def store(request, backup_tools):
    """One emulated object store with the backup bucket created."""
    if request.param == "s3":
        store = S3Store()
    elif request.param == "gcs":
        store = GcsStore()
    else:
        store = AzureStore(backup_tools["azurite-blob"])
    with store:
        store.create_bucket(backup_tools["rclone"])
        yield store


@pytest.fixture
def s3_store(backup_tools):
    with S3Store() as store:
        store.create_bucket(backup_tools["rclone"])
        yield store


class ScriptRunner:
    """Runs the chart's scripts (files/backup/*.sh) with POSIX sh, as the pods do."""

    def __init__(self, pg, tools: dict[str, str], workdir: Path):
        self.pg = pg
        self.rclone = tools["rclone"]
        self.workdir = workdir
        self.path = os.pathsep.join(
            [str(pg.bindir), str(Path(self.rclone).parent), os.environ.get("PATH", "")]
        )

    def run(self, script: str, env: dict[str, str], check: bool = True):
        proc = subprocess.run(
            ["sh", str(SCRIPTS / script)],
            env={**env, "PATH": self.path},
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{script} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def rclone_cmd(self, store, *args: str, check: bool = True):
        return subprocess.run(
            [self.rclone, *args], env=store.env(), capture_output=True, text=True, check=check
        )


@pytest.fixture
def scripts(postgres_server, backup_tools, tmp_path) -> ScriptRunner:
    return ScriptRunner(postgres_server, backup_tools, tmp_path)
