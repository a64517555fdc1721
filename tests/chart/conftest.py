"""Shared helpers for the chart tier: render the bundled chart with the real helm binary.

`render()` runs `helm template` with values files, --set-json pairs and values dicts and
returns the parsed objects; results are cached per argument set, so every test module can
ask for the same scenario without paying for a second helm run.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "pganalytics"
RELEASE = "pga"
NAMESPACE = "pganalytics"

# Credentials Secret the Pulumi program creates (docs/CHART_INTERFACE.md).
PROGRAM_SECRET = f"{RELEASE}-credentials"

# The values the Pulumi program sets on top of values-<stack>.yaml (docs/CHART_INTERFACE.md).
PROGRAM_VALUES: dict[str, Any] = {
    "global": {"storageClass": "pganalytics-ssd", "imageRegistry": "registry.example.com/mirror"},
    "backend": {
        "image": {"tag": "3.3.0"},
        "config": {
            "apiBaseUrl": "https://api.pga.example.org",
            "frontendUrl": "https://api.pga.example.org",
        },
        "auth": {"existingSecret": PROGRAM_SECRET},
    },
    "collector": {"image": {"tag": "3.3.0"}},
    "ingress": {
        "enabled": True,
        "className": "traefik",
        "tls": {"enabled": True, "clusterIssuer": "pganalytics-letsencrypt"},
        "api": {"host": "api.pga.example.org"},
        "grafana": {"host": "grafana.pga.example.org"},
        "frontend": {"host": "app.pga.example.org"},
    },
    "networkPolicy": {"ingressControllerNamespace": "traefik"},
    "timescaledb": {"auth": {"existingSecret": PROGRAM_SECRET}},
    "redis": {"auth": {"existingSecret": PROGRAM_SECRET}},
    "grafana": {"admin": {"existingSecret": PROGRAM_SECRET}},
}

# What the program adds with pganalytics:database.mode cloudnativepg (components/database.py,
# components/backup/): the CloudNativePG cluster instead of the bundled StatefulSet, the
# basic-auth Secrets of its roles, WAL archiving to the bucket.
CNPG_VALUES: dict[str, Any] = {
    "timescaledb": {"enabled": False},
    "cloudnativepg": {
        "enabled": True,
        "clusterName": "pganalytics-db",
        "auth": {
            "superuserSecret": "pganalytics-cnpg-superuser",
            "appSecret": "pganalytics-cnpg-app",
            "readerSecret": "pganalytics-cnpg-grafana",
        },
        "parameters": {"archive_timeout": "300s"},
        "backup": {
            "enabled": True,
            "destinationPath": "s3://pganalytics-prod-backups-a1b2c3d4/cnpg",
            "provider": "s3",
            "s3": {"inheritFromIAMRole": True, "region": "eu-west-1"},
            "retentionDays": 30,
        },
    },
}

STACKS = ("dev", "prod", "enterprise")


def helm_binary() -> str:
    """The helm executable: PATH first, then the repository's pinned copy in .tools/bin."""
    found = shutil.which("helm") or shutil.which("helm", path=str(REPO / ".tools" / "bin"))
    if not found:
        pytest.fail(
            "helm is not installed: run `make setup` (it installs the pinned helm into .tools/bin) "
            "or put helm on PATH",
            pytrace=False,
        )
    return found


class HelmError(Exception):
    """helm exited non-zero; `stderr` holds its message."""

    def __init__(self, stderr: str):
        super().__init__(stderr)
        self.stderr = stderr


def _freeze(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


@functools.cache
def _render_cached(
    files: tuple[str, ...], values_json: str, set_json: tuple[str, ...], extra: tuple[str, ...]
):
    cmd = [helm_binary(), "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for f in files:
        path = Path(f)
        cmd += ["-f", str(path if path.is_absolute() else CHART / path)]
    tmp = None
    values = json.loads(values_json)
    if values:
        fd, tmp = tempfile.mkstemp(suffix=".yaml", prefix="pga-values-")
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(values, fh)
        cmd += ["-f", tmp]
    for pair in set_json:
        cmd += ["--set-json", pair]
    cmd += list(extra)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        if tmp:
            os.unlink(tmp)
    if proc.returncode != 0:
        raise HelmError(proc.stderr)
    return proc.stdout


def render_text(
    *files: str,
    values: dict[str, Any] | None = None,
    set_json: dict[str, Any] | None = None,
    extra_args: tuple[str, ...] = (),
) -> str:
    """Raw `helm template` output (raises HelmError on failure)."""
    pairs = tuple(f"{k}={json.dumps(v)}" for k, v in sorted((set_json or {}).items()))
    return _render_cached(tuple(files), _freeze(values or {}), pairs, tuple(extra_args))


def render(
    *files: str,
    values: dict[str, Any] | None = None,
    set_json: dict[str, Any] | None = None,
    extra_args: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Render the chart and return the Kubernetes objects (empty documents dropped).

    files: values files, relative to the chart directory or absolute.
    values: a values dict applied after the files.
    set_json: {"a.b": value} pairs passed as --set-json (applied last).
    """
    text = render_text(*files, values=values, set_json=set_json, extra_args=extra_args)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def deep_merge(*dicts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in dicts:
        for k, v in d.items():
            if isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = deep_merge(out[k], v)
            else:
                out[k] = v
    return out


# Every scenario the invariant and schema tests run over: name -> (files, values).
SENTINEL_EXT_PASSWORD = "SentinelExtDbPassw0rd9X"
SCENARIOS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "default": ((), {}),
    **{s: ((f"values-{s}.yaml",), {}) for s in STACKS},
    **{f"program-{s}": ((f"values-{s}.yaml",), PROGRAM_VALUES) for s in STACKS},
    "persistence-off": (
        (),
        {
            "timescaledb": {"persistence": {"enabled": False}},
            "grafana": {"persistence": {"enabled": False}},
            "redis": {"enabled": True, "persistence": {"enabled": False}},
        },
    ),
    "external-database": (
        (),
        {
            "timescaledb": {"enabled": False},
            "externalDatabase": {
                "host": "pg.example.internal",
                "password": SENTINEL_EXT_PASSWORD,
                "admin": {"username": "dbadmin", "existingSecret": "ext-db-admin"},
            },
        },
    ),
    "external-database-secret": (
        ("values-prod.yaml",),
        {
            "timescaledb": {"enabled": False},
            "externalDatabase": {
                "host": "pg.example.internal",
                "existingSecret": "ext-db",
                "admin": {"username": "dbadmin", "existingSecret": "ext-db-admin"},
                "maxConnections": 1000,
            },
        },
    ),
    "tls-on": (
        (),
        {
            "ingress": {
                "enabled": True,
                "className": "traefik",
                "tls": {"enabled": True, "clusterIssuer": "le"},
            }
        },
    ),
    "collector-targets": (
        (),
        {
            "collector": {
                "targets": [
                    {"name": "bundled"},
                    {
                        "name": "orders",
                        "host": "orders-db.example.internal",
                        "port": 6432,
                        "databases": ["orders", "postgres"],
                        "username": "monitor",
                        "existingSecret": "orders-monitor",
                        "passwordKey": "password",
                    },
                    {
                        "name": "node-pg",
                        "nodeLocal": True,
                        "databases": ["postgres"],
                        "username": "monitor",
                        "existingSecret": "node-monitor",
                    },
                ]
            }
        },
    ),
    "bootstrap-off": ((), {"databaseBootstrap": {"enabled": False}}),
    "collector-off": ((), {"collector": {"enabled": False}}),
    "networkpolicy-off": ((), {"networkPolicy": {"enabled": False}}),
    "existing-secrets": (
        (),
        {
            "backend": {"auth": {"existingSecret": "mine"}},
            "timescaledb": {"auth": {"existingSecret": "mine"}},
            "redis": {"enabled": True, "auth": {"existingSecret": "mine"}},
            "grafana": {"admin": {"existingSecret": "mine"}},
        },
    ),
    "ml-service": ((), {"mlService": {"enabled": True}, "redis": {"enabled": True}}),
    "frontend": (
        (),
        {
            "frontend": {"enabled": True},
            "ingress": {"enabled": True, "frontend": {"host": "app.example.org"}},
        },
    ),
    "httproute": (
        (),
        {
            "httpRoute": {
                "enabled": True,
                "parentRefs": [{"name": "gw", "namespace": "gateway-system"}],
            },
            "frontend": {"enabled": True},
            "ingress": {"frontend": {"host": "app.example.org"}},
        },
    ),
    "registry-digest": (
        (),
        {
            "global": {
                "imageRegistry": "mirror.example.com",
                "imagePullSecrets": ["regcred", {"name": "other"}],
            },
            "backend": {"image": {"digest": "sha256:" + "a" * 64}},
            "collector": {"image": {"digest": "sha256:" + "b" * 64}},
        },
    ),
    "namespace-on": ((), {"namespace": {"create": True}}),
    "backup": ((), {"backup": {"enabled": True}}),
    # Upload to object storage (issue 11a): GCS with a restore Job, and Azure Blob on an emptyDir.
    "backup-gcs-restore": (
        (),
        {
            "backup": {
                "enabled": True,
                "destination": {"type": "gcs", "bucket": "pga-backups"},
                "serviceAccount": {
                    "annotations": {
                        "iam.gke.io/gcp-service-account": "bk@p.iam.gserviceaccount.com"
                    }
                },
                "restore": {"enabled": True, "stamp": "20260101T021500Z"},
            }
        },
    ),
    "backup-azure": (
        (),
        {
            "backup": {
                "enabled": True,
                "destination": {
                    "type": "azureblob",
                    "bucket": "backups",
                    "azureblob": {"account": "pgabk0example"},
                },
                "podLabels": {"azure.workload.identity/use": "true"},
                "persistence": {"enabled": False},
            }
        },
    ),
    "single-replica-pdb": ((), {"backend": {"replicaCount": 1, "pdb": {"enabled": True}}}),
    # Scheduled CSI VolumeSnapshots of every claim-bearing component, image through a mirror.
    "volume-snapshots": (
        (),
        {
            "global": {"imageRegistry": "mirror.example.com", "imagePullSecrets": ["regcred"]},
            "redis": {"enabled": True},
            "backup": {"enabled": True},
            "volumeSnapshots": {
                "enabled": True,
                "className": "csi-snapclass",
                "components": ["timescaledb", "grafana", "redis", "backup"],
                "keep": 3,
                "readyTimeout": "5m",
                "image": {"digest": "sha256:" + "c" * 64},
            },
        },
    ),
}


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """All scenarios rendered once per session."""
    return {name: render(*files, values=values) for name, (files, values) in SCENARIOS.items()}


@pytest.fixture(scope="session")
def chart_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


@pytest.fixture(scope="session")
def values_schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def scenario_values(name: str, chart_defaults: dict[str, Any]) -> dict[str, Any]:
    """Effective values of a scenario (defaults < files < values), for invariant checks."""
    files, values = SCENARIOS[name]
    merged = chart_defaults
    for f in files:
        merged = deep_merge(merged, yaml.safe_load((CHART / f).read_text()) or {})
    return deep_merge(merged, values)


# --- Kubernetes OpenAPI validation (kubernetes-validate's bundled strict schemas) ----------


def _schema_root():
    import importlib.resources

    return importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"


def supported_k8s_versions() -> list[str]:
    """Minor versions ("1.25") kubernetes-validate ships, oldest first."""
    names = [p.name for p in _schema_root().iterdir() if p.name.endswith("-local-strict")]
    versions = {n[1:].split("-")[0].rsplit(".", 1)[0] for n in names}
    return sorted(versions, key=lambda v: tuple(int(x) for x in v.split(".")))


def chart_k8s_range() -> tuple[str, str]:
    """(oldest, newest) supported minor: the kubeVersion floor and the newest shipped schema."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    floor = chart["kubeVersion"].lstrip(">=").split("-")[0]
    oldest = ".".join(floor.split(".")[:2])
    return oldest, supported_k8s_versions()[-1]


@functools.cache
def _definitions(version: str):
    from referencing import Registry, Resource

    base = _schema_root() / f"v{version}.0-local-strict"
    defs = json.loads((base / "_definitions.json").read_text())
    return base, Registry().with_resource("/api/_definitions.json", Resource.from_contents(defs))


@functools.cache
def k8s_validator(version: str, api_version: str, kind: str):
    """Strict (unknown fields rejected) validator for one kind; None if the kind is unshipped."""
    import re

    import jsonschema
    from referencing import Resource

    base, registry = _definitions(version)
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = base / f"{kind.lower()}-{group}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    registry = registry.with_resource("urn:pga:" + path.name, Resource.from_contents(schema))
    return jsonschema.Draft202012Validator(schema, registry=registry)


# --- walking rendered objects -------------------------------------------------------------

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


def pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template (metadata + spec) of a workload, else None."""
    kind = obj.get("kind")
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    if kind in WORKLOAD_KINDS:
        return obj["spec"]["template"]
    return None


def all_containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod_spec.get("initContainers", [])) + list(pod_spec.get("containers", []))


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o.get("kind") == kind]


def find(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for o in objs:
        if o.get("kind") == kind and o["metadata"]["name"] == name:
            return o
    raise AssertionError(f"{kind}/{name} not rendered; have {sorted(kind_names(objs))}")


def kind_names(objs: list[dict[str, Any]]) -> list[str]:
    return [f"{o['kind']}/{o['metadata']['name']}" for o in objs]


def component(obj: dict[str, Any]) -> str | None:
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")
