"""Fixtures of the e2e tier: the real Pulumi engine deploying the program onto the cluster
tier's control plane (tests/cluster/harness.py: kube-apiserver with PodSecurity admission,
KWOK nodes), with a throwaway local backend and passphrase per stack.

One control plane serves the whole session (test_readiness.py starts a second one of its own,
whose pods turn Ready late): each test module deploys into its own namespace and removes what
it made. Every test here is in the xdist group "e2e" (one worker). When the
engine or the cluster cannot be built or started, every test fails with the reason.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
import yaml

from tests.cluster.harness import INGRESS_CLASS, ClusterError, running_cluster

from .engine import ROOT, Engine, EngineError, Project, build_engine

E2E_TIMEOUT = 3600


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.xdist_group("e2e"))
            # The first test's set-up may wait for a cold build of the engine's plugins
            # (about 40 min on 2 cores); pytest-timeout counts fixture set-up in.
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))


@pytest.fixture(scope="session")
def engine() -> Engine:
    try:
        return build_engine()
    except EngineError as exc:
        pytest.fail(f"e2e tier: the Pulumi engine is not available.\n{exc}", pytrace=False)


@pytest.fixture(scope="session")
def cluster(engine):
    with contextlib.ExitStack() as stack:
        try:
            c = stack.enter_context(running_cluster(keep_logs_in=_logs_dir()))
        except ClusterError as exc:
            pytest.fail(f"e2e tier: the local control plane did not start.\n{exc}", pytrace=False)
        yield c


def _logs_dir() -> Path | None:
    logs = os.environ.get("PGA_CLUSTER_LOGS")
    return Path(logs) / "e2e" if logs else None


def stack_config(stack_file: str, **overrides) -> dict:
    """A shipped stack's config, retargeted at the harness: target `existing`, ingress
    controller `none` with the harness's IngressClass (third-party charts such as Traefik and
    cert-manager cannot be fetched here), TLS off; then `overrides` (key without namespace)."""
    config = dict(yaml.safe_load((ROOT / stack_file).read_text())["config"])
    config["pganalytics:target"] = "existing"
    for cloud_only in ("pganalytics:region", "pganalytics:gcpProject"):
        config.pop(cloud_only, None)
    ingress = dict(config.get("pganalytics:ingress") or {})
    ingress.update({"controller": "none", "className": INGRESS_CLASS, "tls": False})
    ingress.pop("acmeEmail", None)
    ingress.pop("acmeIssuer", None)
    config["pganalytics:ingress"] = ingress
    for key, value in overrides.items():
        config[f"pganalytics:{key}"] = value
    return config


def dev_stack(new_project, cluster, namespace: str) -> Project:
    """A dev stack on `cluster` deploying into `namespace` (new_project: the fixture below)."""
    project = new_project("dev")
    project.init(
        stack_config("Pulumi.dev.yaml", chart={"namespace": namespace}),
        {"pganalytics:kubeconfig": cluster.inline_kubeconfig()},
    )
    return project


@pytest.fixture(scope="module")
def new_project(engine, tmp_path_factory):
    """Factory: a Project (throwaway dir, backend, passphrase) for a stack of this module."""

    def make(stack: str = "dev") -> Project:
        return Project(engine, tmp_path_factory.mktemp(f"e2e-{stack}"), stack)

    return make
