"""Builds stack configurations the way the Pulumi CLI does and runs the program under mocks
in a subprocess (tests/unit/runner.py), one fresh interpreter per run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("runner.py")
STACKS = ("dev", "prod", "enterprise")
TARGETS = ("aws", "gcp", "azure", "existing")
REGIONS = {"aws": "eu-west-1", "gcp": "europe-west1", "azure": "westeurope"}
GCP_PROJECT = "pganalytics-test"
ENDPOINT_CIDR = "198.51.100.0/24"  # a documentation range (RFC 5737)


def project_defaults() -> dict:
    """`pganalytics:<key>` -> default, as the CLI fills in keys a stack leaves unset."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    return {
        f"{project['name']}:{key}": spec["default"]
        for key, spec in (project.get("config") or {}).items()
        if isinstance(spec, dict) and "default" in spec
    }


def stack_file_config(stack: str) -> dict:
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}
    return dict(data.get("config") or {})


def stack_config(stack: str, target: str | None = None, database: str = "") -> dict:
    """The real stack file over the project defaults, with `target` switched and only the
    keys that switch needs (the region of that cloud, a GCP project, who may reach the API
    endpoint: a cloud refuses an empty pganalytics:endpoint.publicCidrs); `database`: another
    pganalytics:database.mode (tests of the bundled StatefulSet on prod and enterprise)."""
    from components.settings import REGION_PATTERNS

    config = {**project_defaults(), **stack_file_config(stack)}
    if database:
        config["pganalytics:database"] = {
            **config.get("pganalytics:database", {}),
            "mode": database,
        }
    if target:
        config["pganalytics:target"] = target
        if target in REGIONS:
            pattern, _ = REGION_PATTERNS[target]
            if not pattern.fullmatch(str(config.get("pganalytics:region", ""))):
                config["pganalytics:region"] = REGIONS[target]
            endpoint = dict(config.get("pganalytics:endpoint") or {})
            if not endpoint.get("publicCidrs"):
                config["pganalytics:endpoint"] = {**endpoint, "publicCidrs": [ENDPOINT_CIDR]}
        if target == "gcp" and not config.get("pganalytics:gcpProject"):
            config["pganalytics:gcpProject"] = GCP_PROJECT
    return config


def run_program(
    stack: str,
    config: dict,
    secret_keys: tuple = (),
    preview: bool = True,
    previous_outputs: dict | None = None,
    fail_types: tuple = (),
    **extra,
) -> dict:
    """`previous_outputs`: the stack outputs of the last update, as the engine returns them;
    `fail_types`: resource types whose creation fails; `extra`: runner options, e.g.
    invokes={token: result}, ambient_kubeconfig="..."."""
    spec = {
        "stack": stack,
        "config": config,
        "secret_keys": list(secret_keys),
        "preview": preview,
        "previous_outputs": previous_outputs or {},
        "fail_types": list(fail_types),
        **extra,
    }
    proc = subprocess.run(
        [sys.executable, str(RUNNER)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise AssertionError(f"runner crashed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


_RESULTS: dict[tuple[str, str], dict] = {}


def _cache_dir() -> Path:
    """Shared by the xdist workers of one test run (and only that run), so each stack x
    target runs once per session however the tests are distributed."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
    path = Path(tempfile.gettempdir()) / f"pganalytics-unit-{run_id}"
    path.mkdir(exist_ok=True)
    return path


def matrix_case(stack: str, target: str) -> dict:
    """The program run for one shipped stack on one target, computed once per session."""
    key = (stack, target)
    if key in _RESULTS:
        return _RESULTS[key]
    path = _cache_dir() / f"{stack}-{target}.json"
    lock = path.with_suffix(".lock")
    deadline = time.monotonic() + 300
    while not path.exists():
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"another worker never finished {path}") from None
            time.sleep(0.2)
            continue
        os.close(fd)
        result = run_program(stack, stack_config(stack, target))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result))
        tmp.replace(path)
    _RESULTS[key] = json.loads(path.read_text())
    return _RESULTS[key]


def inventory_text(result: dict) -> str:
    """A readable, order-independent inventory: type, name, parent (and protection)."""
    lines = []
    for r in result["resources"]:
        parent = r["parent"].split("::")
        parent_label = "stack" if parent[0] == "pulumi:pulumi:Stack" else "::".join(parent)
        flags = [f for f, on in (("read", r["read"]), ("protected", r.get("protect"))) if on]
        suffix = f"  [{', '.join(flags)}]" if flags else ""
        lines.append(f"{r['type']}  {r['name']}  <- {parent_label}{suffix}")
    return "\n".join(sorted(lines)) + "\n"


def by_type(result: dict, type_: str) -> list[dict]:
    return [r for r in result["resources"] if r["type"] == type_]


def one(result: dict, type_: str, name: str | None = None) -> dict:
    found = [r for r in by_type(result, type_) if name is None or r["name"] == name]
    assert len(found) == 1, f"expected one {type_} {name or ''}, found {len(found)}"
    return found[0]


def unsecret(value):
    """Strips the secret markers of recorded inputs."""
    if isinstance(value, dict):
        if set(value) == {"__secret__"}:
            return unsecret(value["__secret__"])
        return {k: unsecret(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unsecret(v) for v in value]
    return value
