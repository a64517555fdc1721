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

import contextlib
import os
from pathlib import Path

import pytest

from .harness import ClusterError, running_cluster


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.xdist_group("cluster"))


@pytest.fixture(scope="session")
def cluster():
    logs = os.environ.get("PGA_CLUSTER_LOGS")
    with contextlib.ExitStack() as stack:
        try:
            c = stack.enter_context(running_cluster(keep_logs_in=Path(logs) if logs else None))
        except ClusterError as exc:
            pytest.fail(
                f"cluster tier: the local control plane is not available.\n{exc}", pytrace=False
            )
        yield c
