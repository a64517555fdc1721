"""Helpers of tests/cluster/test_volume_snapshots.py: the snapshot CRDs, the chart's snapshot
script run as a process under the chart's ServiceAccount, and a stand-in for the CSI snapshotter.

STAND-IN: no CSI driver or snapshot controller runs in the local control plane, so nothing would
ever take a snapshot. `StandInSnapshotter` plays that part and nothing more: it sets
`status.readyToUse: true` on every VolumeSnapshot of one namespace. It proves the script's
Kubernetes side (what it creates, waits for and prunes, with which permissions); it cannot prove
that a cloud's CSI driver takes, restores or deletes a disk snapshot (docs/BACKUP_RESTORE.md).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .harness import Cluster

CRDS = Path(__file__).with_name("fixtures") / "snapshot-crds.yaml"
GROUP = "snapshot.storage.k8s.io"


def install_crds(cluster: Cluster) -> None:
    """The real VolumeSnapshot CRDs (external-snapshotter, see the fixture's header)."""
    cluster.apply(CRDS.read_text())
    for plural in ("volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots"):
        cluster.kubectl(
            "wait", "--for=condition=Established", f"crd/{plural}.{GROUP}", "--timeout=60s"
        )


def service_account_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as `account` with a token from the TokenRequest API,
    so every call of the script is authorised by the chart's Role and nothing else."""
    token = cluster.kubectl(
        "create", "token", account, "-n", namespace, "--duration=1h"
    ).stdout.strip()
    path.write_text(cluster.kubeconfig_text(account, {"token": token}, namespace=namespace))
    path.chmod(0o600)
    return path


def run_script(
    cluster: Cluster,
    script: Path,
    kubeconfig: Path,
    env: dict[str, str],
    home: Path,
    while_running: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess:
    """The chart's script under a POSIX shell (dash), with the project's kubectl on PATH.
    `while_running` is called about every 0.2 s until the script ends (the stand-in's turn: in
    this thread, so nothing runs behind the test's back)."""
    kubectl_dir = str(cluster.tools.kubectl.parent)
    full = {
        "PATH": f"{kubectl_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "KUBECONFIG": str(kubeconfig),
        "NO_PROXY": "127.0.0.1,localhost",
        **env,
    }
    cmd = ["dash", str(script)]
    proc = subprocess.Popen(
        cmd, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while True:
        if while_running is not None:
            while_running()
        try:
            out, err = proc.communicate(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                proc.kill()
                out, err = proc.communicate()
                raise AssertionError(f"the script ran over 300 s:\n{out}\n{err}") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def snapshots(cluster: Cluster, namespace: str) -> list[dict]:
    status, body = cluster.api("GET", f"/apis/{GROUP}/v1/namespaces/{namespace}/volumesnapshots")
    assert status == 200, body
    return body["items"]


class StandInSnapshotter:
    """STAND-IN for the CSI snapshotter (see the module docstring): marks every VolumeSnapshot
    of `namespace` ready to use, as the external-snapshotter does once the driver reports the
    cloud snapshot complete. `mark_ready` is passed to `run_script` as its `while_running`."""

    def __init__(self, cluster: Cluster, namespace: str):
        self.cluster = cluster
        self.namespace = namespace
        self.marked: list[str] = []
        self.errors: list[str] = []

    def mark_ready(self) -> None:
        status, body = self.cluster.api(
            "GET", f"/apis/{GROUP}/v1/namespaces/{self.namespace}/volumesnapshots"
        )
        if status in (429, 503):
            return  # the CRD's storage is still initialising: the next round retries
        if status != 200:
            self.errors.append(f"listing snapshots: {status} {body}")
            return
        for snap in body["items"]:
            meta = snap["metadata"]
            if snap.get("status", {}).get("readyToUse") is True or meta.get("deletionTimestamp"):
                continue
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            status, body = self.cluster.api(
                "PATCH",
                f"/apis/{GROUP}/v1/namespaces/{self.namespace}/volumesnapshots/"
                f"{meta['name']}/status",
                {
                    "status": {
                        "readyToUse": True,
                        "creationTime": now,
                        "boundVolumeSnapshotContentName": f"snapcontent-{meta['uid']}",
                    }
                },
                content_type="application/merge-patch+json",
            )
            if status == 200:
                self.marked.append(meta["name"])
            elif status != 404:  # deleted meanwhile
                self.errors.append(f"patching {meta['name']}: {status} {body}")
