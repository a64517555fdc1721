"""Local object-store emulators for the backup tier, each a process on 127.0.0.1:

    S3     moto's server mode (PyPI `moto[server]`)
    GCS    gcp-storage-emulator (PyPI)
    Azure  Azurite's Blob service (npm, installed by scripts/backup-test-tools.sh)

Each store gives the rclone remote the chart's scripts use (`backup:` configured through
RCLONE_CONFIG_BACKUP_* variables, the same mechanism as the chart's CronJob) with the
emulator's endpoint and test credentials instead of a workload identity.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

LOOPBACK = "127.0.0.1"
BUCKET = "pganalytics-backups"
PREFIX = "pganalytics"
# Azurite's documented development account (public, emulator only).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"emulator exited with {proc.returncode} before serving {url}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers: good enough
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"emulator did not answer {url} within {timeout}s")


class Store:
    """An emulator process plus the rclone settings that reach it; its data lives in a
    temporary directory removed on exit."""

    kind = ""

    def __init__(self) -> None:
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix=f"pga-{self.kind}-"))
        self.proc: subprocess.Popen | None = None

    # -- overridden per store --------------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def ready_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def remote_config(self) -> dict[str, str]:
        raise NotImplementedError

    def create_bucket(self, rclone: str) -> None:
        subprocess.run(
            [rclone, "mkdir", f"backup:{BUCKET}"], env=self.env(), check=True, capture_output=True
        )

    # -- common ----------------------------------------------------------------------------
    @property
    def remote(self) -> str:
        return f"backup:{BUCKET}/{PREFIX}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
        remote = self.remote_config()
        env.update({f"RCLONE_CONFIG_BACKUP_{k.upper()}": v for k, v in remote.items()})
        # No config file: the remote lives in the environment, as in the chart.
        env["RCLONE_CONFIG"] = ""
        env["BACKUP_REMOTE"] = self.remote
        env.update(extra)
        return env

    def __enter__(self) -> Store:
        with open(self.tmp / "emulator.log", "wb") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp
            )
        try:
            wait_http(self.ready_url(), self.proc)
        except Exception:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self) -> str:
        path = self.tmp / "emulator.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


class S3Store(Store):
    kind = "s3"

    def command(self) -> list[str]:
        moto = Path(sys.executable).with_name("moto_server")
        return [str(moto), "-H", LOOPBACK, "-p", str(self.port)]

    def ready_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/moto-api/"

    def remote_config(self) -> dict[str, str]:
        # What the chart sets for `existing` (an S3-compatible endpoint and a key pair).
        return {
            "type": "s3",
            "provider": "Other",
            "endpoint": f"http://{LOOPBACK}:{self.port}",
            "region": "us-east-1",
            "force_path_style": "true",
            "access_key_id": "testing",
            "secret_access_key": "testing",
        }


class GcsStore(Store):
    kind = "gcs"

    def command(self) -> list[str]:
        emulator = Path(sys.executable).with_name("gcp-storage-emulator")
        return [
            str(emulator),
            "start",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--in-memory",
            "--default-bucket",
            BUCKET,
        ]

    def remote_config(self) -> dict[str, str]:
        return {
            "type": "google cloud storage",
            "endpoint": f"http://{LOOPBACK}:{self.port}/storage/v1/",
            "anonymous": "true",
            "bucket_policy_only": "true",
        }

    def create_bucket(self, rclone: str) -> None:
        """The emulator creates it (--default-bucket)."""


class AzureStore(Store):
    kind = "azure"

    def __init__(self, azurite_blob: str) -> None:
        super().__init__()
        self.azurite_blob = azurite_blob

    def command(self) -> list[str]:
        return [
            self.azurite_blob,
            "--blobHost",
            LOOPBACK,
            "--blobPort",
            str(self.port),
            "--location",
            str(self.tmp),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--loose",
            "--silent",
        ]

    def remote_config(self) -> dict[str, str]:
        return {
            "type": "azureblob",
            "account": AZURITE_ACCOUNT,
            "key": AZURITE_KEY,
            "endpoint": f"http://{LOOPBACK}:{self.port}/{AZURITE_ACCOUNT}",
        }
