"""Session fixture of the cluster tier: a local control plane with KWOK nodes (see harness.py).

The cluster is built and started once per pytest process (per xdist worker: run this tier on one
worker, e.g. `pytest -p no:xdist tests/cluster` or `--dist loadgroup`; every test here is in the
xdist group "cluster"). When the tools cannot be built or the cluster cannot start, every test
of the tier fails with the reason; nothing is skipped.

Environment:
  PGA_TOOLS_CACHE    where tools/build.sh keeps the binaries (default ~/.cache/pganalytics-tools)
  PGA_CLUSTER_LOGS   a directory to copy the component logs (etcd, kube-*, kwok) into at the end
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from .harness import Cluster, ClusterError, build_tools


def pytest_configure(config):
    # Known to pytest-xdist; registered here too for runs with -p no:xdist (--strict-markers).
    config.addinivalue_line(
        "markers", "xdist_group(name): run the group's tests on one xdist worker"
    )


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.xdist_group("cluster"))


@pytest.fixture(scope="session")
def cluster():
    # SIGTERM (CI stopping the run, `timeout`) unwinds like Ctrl-C, so the teardown below runs.
    previous = signal.getsignal(signal.SIGTERM)

    def _raise_interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        previous = None
    error = None
    try:
        tools = build_tools()
    except ClusterError as exc:
        error = f"cluster tier: the control-plane tools are not available.\n{exc}"
    if error:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        pytest.fail(error, pytrace=False)
    logs = os.environ.get("PGA_CLUSTER_LOGS")
    c = Cluster(tools, keep_logs_in=Path(logs) if logs else None)
    try:
        c.start()
    except ClusterError as exc:
        error = f"cluster tier: the local control plane did not start.\n{exc}"
    if error:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        pytest.fail(error, pytrace=False)
    try:
        yield c
    finally:
        c.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
