"""Readiness without the provider's Service await (components/chart_transforms.py,
SKIP_AWAIT_TYPES): on a control plane of its own whose pods turn Ready only 10-30 s after
they are scheduled (the database 25-35 s: tests/cluster/kwok-stages-rollout.yaml), the first
`pulumi up` of a dev stack returns only once every Service's EndpointSlices hold a ready
address and no address that is not ready, through the awaits of the workloads behind them."""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from pathlib import Path

import pytest

from tests.cluster.harness import STAGES, ClusterError, running_cluster

from .checks import services_not_ready
from .conftest import dev_stack

NAMESPACE = "pga-e2e-readiness"
SKIP_AWAIT = "pulumi.com/skipAwait"


@pytest.fixture(scope="module")
def slow_cluster(engine):
    logs = os.environ.get("PGA_CLUSTER_LOGS")
    with contextlib.ExitStack() as stack:
        try:
            c = stack.enter_context(
                running_cluster(
                    stages=STAGES["rollout"],
                    keep_logs_in=Path(logs) / "e2e-rollout" if logs else None,
                )
            )
        except ClusterError as exc:
            pytest.fail(f"the rollout control plane did not start.\n{exc}", pytrace=False)
        yield c


@pytest.fixture(scope="module")
def proj(new_project, slow_cluster):
    project = dev_stack(new_project, slow_cluster, NAMESPACE)
    yield project
    project.destroy(check=False)


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def ready_delay(pod: dict) -> float | None:
    """Seconds from the pod's scheduling to its Ready condition (None: not Ready)."""
    conditions = {c["type"]: c for c in pod.get("status", {}).get("conditions", [])}
    ready, scheduled = conditions.get("Ready"), conditions.get("PodScheduled")
    if not ready or ready["status"] != "True" or not scheduled:
        return None
    return _seconds(ready["lastTransitionTime"]) - _seconds(scheduled["lastTransitionTime"])


def test_up_returns_with_every_service_ready_without_the_service_await(proj, slow_cluster):
    proj.up()
    # At once, before anything else runs: what the user's next command would find.
    not_ready = services_not_ready(slow_cluster, NAMESPACE)
    assert not_ready == [], not_ready

    # The pods were late: without the workloads' awaits `up` would have returned first.
    pods = slow_cluster.kubectl_json("get", "pods", "-n", NAMESPACE)["items"]
    delays = [d for d in map(ready_delay, pods) if d is not None]
    assert delays and max(delays) >= 10, f"no pod turned Ready 10 s after scheduling: {delays}"

    # ... and the Services were not awaited by the provider: each carries skipAwait.
    services = [
        r for r in proj.resources() if r["type"] == "kubernetes:core/v1:Service" and r["custom"]
    ]
    assert services, "the stack has no Service"
    for r in services:
        annotations = r["inputs"]["metadata"].get("annotations") or {}
        assert annotations.get(SKIP_AWAIT) == "true", r["urn"]
