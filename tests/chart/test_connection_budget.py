"""Connection budget: API pods at HPA max x per-pod pools + the other clients + reserve must fit
in the database's max_connections, for every values file of the chart (docs/APP_CONTRACT.md).

The budget is recomputed here from the rendered objects (not from the chart's helper), with
the per-pod figure of the app contract, so a values file, a template or a pinned-version
change that breaks it fails CI.
"""

from __future__ import annotations

import pytest
import yaml

from . import app_contract as contract
from .conftest import CHART, PROGRAM_VALUES, RELEASE, HelmError, by_kind, component, render

P = f"{RELEASE}-pganalytics"
VALUES_FILES = sorted(p.name for p in CHART.glob("values-*.yaml"))
SUPERUSER_RESERVED = 3  # PostgreSQL's default superuser_reserved_connections


def _env(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def _max_connections(objs) -> int:
    db = next(o for o in by_kind(objs, "StatefulSet") if component(o) == "timescaledb")
    args = db["spec"]["template"]["spec"]["containers"][0]["args"]
    settings = dict(a.split("=", 1) for a in args[1::2])
    return int(settings["max_connections"])


def required_connections(objs, values) -> int:
    """The budget as the running system would use it, read off the rendered objects."""
    hpa = by_kind(objs, "HorizontalPodAutoscaler")
    backend = next(o for o in by_kind(objs, "StatefulSet") if component(o) == "backend")
    api_pods = hpa[0]["spec"]["maxReplicas"] if hpa else backend["spec"]["replicas"]
    total = api_pods * contract.BACKEND_CONNECTIONS_PER_POD
    for cm in by_kind(objs, "ConfigMap"):
        if cm["metadata"]["name"] == f"{P}-grafana-provisioning":
            ds = yaml.safe_load(cm["data"]["datasources.yaml"])["datasources"][0]
            total += ds["jsonData"]["maxOpenConns"]
    for dep in by_kind(objs, "Deployment"):
        if component(dep) == "ml-service":
            env = _env(dep["spec"]["template"]["spec"]["containers"][0])
            total += (
                dep["spec"]["replicas"] * values["mlService"]["workers"] * int(env["DB_POOL_SIZE"])
            )
        if component(dep) == "collector":
            env = _env(dep["spec"]["template"]["spec"]["containers"][0])
            if env["POSTGRES_HOST"] == f"{P}-timescaledb":
                per = min(
                    len(env["POSTGRES_DATABASES"].split(",")),
                    values["connectionBudget"]["perCollector"],
                )
                total += dep["spec"]["replicas"] * per
    return total + values["connectionBudget"]["reserve"] + SUPERUSER_RESERVED


def _values(*files, extra=None):
    merged = yaml.safe_load((CHART / "values.yaml").read_text())
    from .conftest import deep_merge

    for f in files:
        merged = deep_merge(merged, yaml.safe_load((CHART / f).read_text()) or {})
    return deep_merge(merged, extra or {})


@pytest.mark.parametrize("program", [False, True], ids=["chart", "program"])
@pytest.mark.parametrize("values_file", ["values.yaml", *VALUES_FILES])
def test_every_values_file_fits_its_connection_budget(values_file, program):
    files = () if values_file == "values.yaml" else (values_file,)
    extra = PROGRAM_VALUES if program else {}
    objs = render(*files, values=extra)
    need = required_connections(objs, _values(*files, extra=extra))
    have = _max_connections(objs)
    assert need <= have, f"{values_file}: needs {need} connections, max_connections is {have}"


def test_prod_at_hpa_max_is_sized_for_ten_api_pods():
    objs = render("values-prod.yaml", values=PROGRAM_VALUES)
    assert by_kind(objs, "HorizontalPodAutoscaler")[0]["spec"]["maxReplicas"] == 10
    assert _max_connections(objs) >= 10 * contract.BACKEND_CONNECTIONS_PER_POD


def test_an_explicit_max_connections_below_the_budget_fails_the_render():
    with pytest.raises(HelmError) as err:
        render(
            "values-prod.yaml", values={"timescaledb": {"parameters": {"max_connections": "300"}}}
        )
    assert "timescaledb.parameters.max_connections" in err.value.stderr
    assert "connection budget" in err.value.stderr


def test_scaling_within_the_headroom_keeps_the_database_untouched():
    """Scaling the API (here 1 -> 2 pods) must not change the database's arguments: a new
    max_connections would restart PostgreSQL as a side effect of scaling."""
    db = [o for o in render() if o["kind"] == "StatefulSet" and component(o) == "timescaledb"]
    scaled = render(values={"backend": {"replicaCount": 2}})
    db2 = [o for o in scaled if o["kind"] == "StatefulSet" and component(o) == "timescaledb"]
    assert db == db2


def test_scaling_past_the_headroom_fails_with_the_key():
    with pytest.raises(HelmError) as err:
        render(values={"backend": {"replicaCount": 3}})
    assert "timescaledb.parameters.max_connections" in err.value.stderr


def test_an_explicit_value_that_fits_is_kept():
    objs = render(values={"timescaledb": {"parameters": {"max_connections": "400"}}})
    assert _max_connections(objs) == 400


def test_scaling_out_raises_the_automatic_size():
    auto = {"timescaledb": {"parameters": {"max_connections": None}}}
    small = _max_connections(render(values=auto))
    big = _max_connections(
        render(values={**auto, "backend": {"autoscaling": {"enabled": True, "maxReplicas": 4}}})
    )
    assert big - small == 3 * contract.BACKEND_CONNECTIONS_PER_POD


def test_external_database_budget_is_checked_when_declared():
    ext = {
        "timescaledb": {"enabled": False},
        "externalDatabase": {
            "host": "db.example",
            "existingSecret": "db",
            "admin": {"username": "admin", "existingSecret": "db-admin"},
            "maxConnections": 100,
        },
    }
    with pytest.raises(HelmError) as err:
        render("values-prod.yaml", values=ext)
    assert "externalDatabase.maxConnections" in err.value.stderr
