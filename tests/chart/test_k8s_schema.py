"""Every rendered object validates against the Kubernetes OpenAPI schemas, strict mode
(unknown fields rejected), for the oldest and the newest Kubernetes minor the chart supports."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from .conftest import SCENARIOS, chart_k8s_range, k8s_validator, render

OLDEST, NEWEST = chart_k8s_range()
HTTPROUTE_SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "httproute-gateway-v1.json").read_text()
)


def _errors(objs, version):
    problems = []
    for o in objs:
        name = f"{o['kind']}/{o['metadata']['name']}"
        if o["apiVersion"] == "gateway.networking.k8s.io/v1":
            validator = jsonschema.Draft202012Validator(HTTPROUTE_SCHEMA)
        else:
            validator = k8s_validator(version, o["apiVersion"], o["kind"])
        if validator is None:
            problems.append(
                f"{name}: {o['apiVersion']} {o['kind']} does not exist in Kubernetes {version}"
            )
            continue
        for err in validator.iter_errors(o):
            path = ".".join(str(p) for p in err.absolute_path)
            problems.append(f"{name} at {path}: {err.message[:300]}")
    return problems


def test_supported_range_is_shipped():
    from .conftest import supported_k8s_versions

    shipped = supported_k8s_versions()
    assert OLDEST in shipped, f"kubeVersion floor {OLDEST} has no bundled schema ({shipped})"
    assert shipped[-1] == NEWEST


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_objects_validate_strictly(name, version):
    files, values = SCENARIOS[name]
    objs = render(*files, values=values, extra_args=("--kube-version", f"{version}.0"))
    problems = _errors(objs, version)
    assert not problems, f"{name} on Kubernetes {version}:\n" + "\n".join(problems)


def test_validator_rejects_unknown_fields():
    """Guard: the strict schemas really reject an unknown field."""
    bad = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 80, "targtPort": 8080}]},
    }
    assert _errors([bad], NEWEST), "strict validation accepted an unknown field"
