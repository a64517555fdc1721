"""The real helm renders and lints every values file and the combinations the program uses."""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest

from .conftest import (
    CHART,
    PROGRAM_VALUES,
    SCENARIOS,
    STACKS,
    HelmError,
    by_kind,
    chart_k8s_range,
    helm_binary,
    render,
    render_text,
)

VALUES_FILES = ("values.yaml", *(f"values-{s}.yaml" for s in STACKS))


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_helm_lint_strict(values_file, tmp_path):
    cmd = [helm_binary(), "lint", "--strict", str(CHART), "-f", str(CHART / values_file)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


@pytest.mark.parametrize("stack", STACKS)
def test_helm_lint_strict_with_program_values(stack, tmp_path):
    import yaml

    program = tmp_path / "program.yaml"
    program.write_text(yaml.safe_dump(PROGRAM_VALUES))
    cmd = [
        helm_binary(),
        "lint",
        "--strict",
        str(CHART),
        "-f",
        str(CHART / f"values-{stack}.yaml"),
        "-f",
        str(program),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_renders(rendered, name):
    objs = rendered[name]
    assert objs, f"{name}: nothing rendered"
    kinds = Counter(o["kind"] for o in objs)
    assert kinds["StatefulSet"] >= 1, kinds  # the API is always there
    for o in objs:
        assert o["metadata"]["name"], o
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == "pganalytics", o["metadata"]


def test_values_yaml_renders_core_components(rendered):
    objs = rendered["default"]
    names = {f"{o['kind']}/{o['metadata']['name']}" for o in objs}
    for expected in (
        "StatefulSet/pga-pganalytics-backend",
        "Service/pga-pganalytics-backend",
        "Service/pga-pganalytics-backend-headless",
        "DaemonSet/pga-pganalytics-collector",
        "StatefulSet/pga-pganalytics-timescaledb",
        "Deployment/pga-pganalytics-grafana",
        "PersistentVolumeClaim/pga-pganalytics-grafana",
        "ServiceAccount/pga-pganalytics",
        "NetworkPolicy/pga-pganalytics-default-deny",
    ):
        assert expected in names, sorted(names)
    assert not by_kind(objs, "Ingress"), "ingress is off by default"
    assert not by_kind(objs, "Namespace"), "the namespace is not owned by default"


def test_kube_version_floor_is_enforced():
    oldest, _ = chart_k8s_range()
    major, minor = (int(x) for x in oldest.split("."))
    render(extra_args=("--kube-version", f"{major}.{minor}.0"))
    with pytest.raises(HelmError, match="kubeVersion"):
        render_text(extra_args=("--kube-version", f"{major}.{minor - 1}.0"))


def test_program_combinations_render_no_chart_secrets(rendered):
    """With the four existingSecret values the chart renders no Secret of its own."""
    for stack in STACKS:
        secrets = by_kind(rendered[f"program-{stack}"], "Secret")
        assert not secrets, [s["metadata"]["name"] for s in secrets]
