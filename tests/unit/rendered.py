"""The chart's children as helm.v4.Chart registers them: the real `helm template` output of the
values the program hands the chart, each object with the Pulumi type token and the resource
name the provider gives it (`<resource_prefix>:<namespace>/<name>`), so transforms are tested
on exactly what they will see."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
import yaml

from tests.unit.harness import ROOT, stack_config

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass"}


@dataclass(frozen=True)
class Child:
    type_: str
    name: str
    props: dict


def settings_for(
    stack: str, overrides: dict | None = None, target: str = "existing", database: str = ""
):
    from components.settings import NAMESPACE, build_settings

    prefix = f"{NAMESPACE}:"
    config = {k[len(prefix) :]: v for k, v in stack_config(stack, target, database).items()}
    if overrides:
        config["chart"] = {**config.get("chart", {}), "values": overrides}
    return build_settings(stack, config)


def type_token(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{kind}"


def _helm() -> str:
    found = shutil.which("helm") or shutil.which("helm", path=str(ROOT / ".tools" / "bin"))
    if not found:
        pytest.fail("helm is not installed: run `make setup` or put helm on PATH", pytrace=False)
    return found


@cache
def _render(values_json: str, namespace: str) -> tuple[Child, ...]:
    from components.settings import RELEASE_NAME

    with tempfile.NamedTemporaryFile("w", suffix=".json") as fh:
        fh.write(values_json)
        fh.flush()
        out = subprocess.run(
            [
                _helm(),
                "template",
                RELEASE_NAME,
                str(ROOT / "charts" / "pganalytics"),
                *("--namespace", namespace, "--values", fh.name),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    children = []
    for obj in yaml.safe_load_all(out):
        if not obj:
            continue
        meta = obj.get("metadata") or {}
        name = meta["name"]
        if obj["kind"] not in CLUSTER_SCOPED:
            name = f"{meta.get('namespace') or namespace}/{name}"
        children.append(
            Child(type_token(obj["apiVersion"], obj["kind"]), f"{RELEASE_NAME}:{name}", obj)
        )
    return tuple(children)


def chart_children(settings) -> tuple[Child, ...]:
    """What helm.v4.Chart registers for these settings (values as the release passes them)."""
    from components import values as chart_values

    values = chart_values.merged_values(settings)
    return _render(json.dumps(values, sort_keys=True), settings.chart.namespace)


def apply(transforms: list, child: Child) -> tuple[dict, Any]:
    """Runs the transforms in order, as the engine does: (props, opts)."""
    import pulumi

    props, opts = child.props, pulumi.ResourceOptions()
    for transform in transforms:
        result = transform(
            pulumi.ResourceTransformArgs(
                custom=True, type_=child.type_, name=child.name, props=props, opts=opts
            )
        )
        if result is not None:
            props, opts = result.props, result.opts
    return props, opts
