"""Connection budget: API pods at HPA max x per-pod pools + the other clients + reserve must fit
in the database's max_connections, for every values file of the chart (docs/APP_CONTRACT.md).

The budget is recomputed here from the rendered objects (not from the chart's helper), with
the per-process figures of the app contract, so a values file, a template or a pinned-version
change that breaks it fails CI. The program's settings-time copy (components/budget.py) must
give the chart's numbers for every values file and toggle, for the chart's own helper and for
the CloudNativePG one (`pganalytics.cnpg.connectionBudget`: components/cnpg_budget.py).
"""

from __future__ import annotations

import re

import pytest
import yaml

from components import budget, cnpg_budget

from . import app_contract as contract
from .conftest import (
    CHART,
    CNPG_VALUES,
    PROGRAM_VALUES,
    RELEASE,
    HelmError,
    by_kind,
    component,
    deep_merge,
    render,
)

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
            per_pod = contract.ML_WORKERS_PER_POD * contract.ML_CONNECTIONS_PER_WORKER
            total += dep["spec"]["replicas"] * per_pod
        if component(dep) == "collector":
            env = _env(dep["spec"]["template"]["spec"]["containers"][0])
            if env["POSTGRES_HOST"] == f"{P}-timescaledb":
                total += dep["spec"]["replicas"] * contract.COLLECTOR_CONNECTIONS
    return total + values["connectionBudget"]["reserve"] + SUPERUSER_RESERVED


def _values(*files, extra=None):
    merged = yaml.safe_load((CHART / "values.yaml").read_text())
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


def test_the_per_process_figures_are_those_of_the_app_contract():
    cb = _values()["connectionBudget"]
    assert cb["backendPerPod"] == contract.BACKEND_CONNECTIONS_PER_POD
    assert cb["perCollector"] == contract.COLLECTOR_CONNECTIONS
    assert cb["mlServicePerWorker"] == contract.ML_CONNECTIONS_PER_WORKER
    assert _values()["mlService"]["workers"] == contract.ML_WORKERS_PER_POD


def test_each_values_file_budget_is_the_one_its_comment_states():
    """The comments above max_connections in values-prod/enterprise.yaml state the sum."""
    for values_file in ("values-prod.yaml", "values-enterprise.yaml"):
        text = (CHART / values_file).read_text()
        stated = int(re.search(r"superuser slots = (\d+)", text).group(1))
        assert budget.connection_budget(_values(values_file))["total"] == stated, values_file


# Toggles on top of each values file: the chart's helper and components/budget.py must agree.
TOGGLES = {
    "as-is": {},
    "ml-on": {"mlService": {"enabled": True, "replicaCount": 3}, "redis": {"enabled": True}},
    "hpa-25": {"backend": {"autoscaling": {"enabled": True, "maxReplicas": 25}}},
    "hpa-off-4": {"backend": {"replicaCount": 4, "autoscaling": {"enabled": False}}},
    "three-targets": {
        "collector": {
            "targets": [
                {"name": "bundled"},
                {"name": "again", "databases": ["pganalytics"]},
                {
                    "name": "elsewhere",
                    "host": "db.example",
                    "databases": ["app"],
                    "username": "mon",
                    "existingSecret": "mon",
                },
            ]
        }
    },
    "no-collector-no-grafana": {"collector": {"enabled": False}, "grafana": {"enabled": False}},
    "superuser-slots": {"timescaledb": {"parameters": {"superuser_reserved_connections": "7"}}},
    "own-figures": {
        "connectionBudget": {
            "backendPerPod": 20,
            "perCollector": 6,
            "mlServicePerWorker": 3,
            "reserve": 1,
        }
    },
}
AUTO = {"timescaledb": {"parameters": {"max_connections": None}}}


@pytest.mark.parametrize("toggle", sorted(TOGGLES))
@pytest.mark.parametrize("values_file", ["values.yaml", *VALUES_FILES])
def test_the_program_computes_the_charts_budget(values_file, toggle):
    """Without max_connections the chart sizes the server to its budget: the rendered value is
    the helper's total, which components/budget.py must reproduce from the merged values."""
    files = () if values_file == "values.yaml" else (values_file,)
    extra = deep_merge(TOGGLES[toggle], AUTO)
    chart_total = _max_connections(render(*files, values=extra))
    assert budget.connection_budget(_values(*files, extra=extra))["total"] == chart_total


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_the_program_and_the_chart_refuse_the_same_budget(values_file):
    """One pod more than max_connections allows: the chart's render fails with the budget the
    program reports at settings time, and one pod fewer passes both."""
    values = _values(values_file)
    limit = budget.max_connections(values)[1]
    terms = budget.connection_budget(values)
    fit = (limit - (terms["total"] - terms["backend"])) // contract.BACKEND_CONNECTIONS_PER_POD
    over = {"backend": {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": fit + 1}}}
    with pytest.raises(HelmError) as err:
        render(values_file, values=over)
    merged = _values(values_file, extra=over)
    found = budget.problems(merged, over, values_file)
    total = budget.connection_budget(merged)["total"]
    assert f"is below the connection budget {total} " in err.value.stderr
    assert len(found) == 1 and f"connection budget to {total} " in found[0]
    assert "pganalytics:chart.values.backend.autoscaling.maxReplicas" in found[0]
    under = {"backend": {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": fit}}}
    render(values_file, values=under)
    assert budget.problems(_values(values_file, extra=under), under, values_file) == []


# database.mode cloudnativepg: the Pooler's budget (pganalytics.cnpg.connectionBudget). The chart
# renders none of its terms, so agreement is checked at the edge: with maxClientConn and
# max_connections set to the program's figures the chart renders, one below each it refuses,
# quoting the figure the program computed.
CNPG_TOGGLES = {
    **{k: TOGGLES[k] for k in ("as-is", "ml-on", "hpa-25", "three-targets", "own-figures")},
    "no-collector-no-grafana": TOGGLES["no-collector-no-grafana"],
    "cnpg-superuser-slots": {
        "cloudnativepg": {"parameters": {"superuser_reserved_connections": "7"}}
    },
    "pooler-sized": {"cloudnativepg": {"pooler": {"instances": 4, "defaultPoolSize": 30}}},
}


def _cnpg(values_file: str, extra: dict) -> tuple[tuple[str, ...], dict]:
    files = () if values_file == "values.yaml" else (values_file,)
    return files, deep_merge(PROGRAM_VALUES, CNPG_VALUES, extra)


def _limits(clients: int, servers: int) -> dict:
    return {
        "cloudnativepg": {
            "pooler": {"maxClientConn": clients},
            "parameters": {"max_connections": str(servers)},
        }
    }


@pytest.mark.parametrize("toggle", sorted(CNPG_TOGGLES))
@pytest.mark.parametrize("values_file", ["values.yaml", *VALUES_FILES])
def test_the_program_computes_the_cnpg_budget(values_file, toggle):
    files, extra = _cnpg(values_file, CNPG_TOGGLES[toggle])
    b = cnpg_budget.pooler_budget(_values(*files, extra=extra))
    clients, servers = b["poolerClients"], b["total"]
    assert clients > 0 and servers > 0
    exact = deep_merge(extra, _limits(clients, servers))
    render(*files, values=exact)
    assert budget.problems(_values(*files, extra=exact), exact, values_file) == []
    with pytest.raises(HelmError) as err:
        render(*files, values=deep_merge(extra, _limits(clients - 1, servers)))
    assert f"is below the clients of the pooler ({clients}: " in err.value.stderr
    with pytest.raises(HelmError) as err:
        render(*files, values=deep_merge(extra, _limits(clients, servers - 1)))
    assert f"is below the server connections {servers} (pooler {b['poolerServers']} " in (
        err.value.stderr
    )


@pytest.mark.parametrize("values_file", ["values-prod.yaml", "values-enterprise.yaml"])
def test_the_program_and_the_chart_refuse_the_same_pooler_budget(values_file):
    """One API pod more than maxClientConn allows, then one PgBouncer pod more than
    max_connections allows: both refused by the chart and by the program, naming the key."""
    files, extra = _cnpg(values_file, {})
    values = _values(*files, extra=extra)
    b = cnpg_budget.pooler_budget(values)
    per = contract.BACKEND_CONNECTIONS_PER_POD
    fit = (values["cloudnativepg"]["pooler"]["maxClientConn"] - b["poolerClients"]) // per
    pods = budget.api_pods(values) + fit + 1
    over = {"backend": {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": pods}}}
    with pytest.raises(HelmError) as err:
        render(*files, values=deep_merge(extra, over))
    assert "cloudnativepg.pooler.maxClientConn" in err.value.stderr
    found = budget.problems(_values(*files, extra=deep_merge(extra, over)), over, values_file)
    assert len(found) == 1, found
    assert found[0].startswith(
        "pganalytics:chart.values.backend.autoscaling.maxReplicas raises the PgBouncer clients"
    )
    assert f"above {cnpg_budget.MAX_CLIENT_CONN} = " in found[0]
    under = {
        "backend": {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": pods - 1}}
    }
    render(*files, values=deep_merge(extra, under))
    assert (
        budget.problems(_values(*files, extra=deep_merge(extra, under)), under, values_file) == []
    )

    limit = cnpg_budget.max_connections(values)
    pooler = values["cloudnativepg"]["pooler"]
    per_pod = pooler["defaultPoolSize"] * cnpg_budget.PAIRS
    room = (limit - b["total"]) // per_pod
    more = {"cloudnativepg": {"pooler": {"instances": pooler["instances"] + room + 1}}}
    with pytest.raises(HelmError) as err:
        render(*files, values=deep_merge(extra, more))
    assert "cloudnativepg.parameters.max_connections" in err.value.stderr
    found = budget.problems(_values(*files, extra=deep_merge(extra, more)), more, values_file)
    assert len(found) == 1 and found[0].startswith(
        "pganalytics:chart.values.cloudnativepg.pooler.instances raises the server connections"
    ), found
    fewer = {"cloudnativepg": {"pooler": {"instances": pooler["instances"] + room}}}
    render(*files, values=deep_merge(extra, fewer))
    assert (
        budget.problems(_values(*files, extra=deep_merge(extra, fewer)), fewer, values_file) == []
    )


def test_a_cluster_without_pooler_holds_the_whole_budget():
    """Without the Pooler every client reaches PostgreSQL: the chart's own budget applies to
    cloudnativepg.parameters.max_connections, and the program reports the same total."""
    files, extra = _cnpg("values-prod.yaml", {"cloudnativepg": {"pooler": {"enabled": False}}})
    values = _values(*files, extra=extra)
    key, limit = budget.max_connections(values)
    total = budget.connection_budget(values)["total"]
    assert key == "cloudnativepg.parameters.max_connections" and limit < total
    with pytest.raises(HelmError) as err:
        render(*files, values=extra)
    assert f"{key}: {limit} is below the connection budget {total} " in err.value.stderr
    (found,) = budget.problems(values, extra, "values-prod.yaml")
    assert f"connection budget to {total} " in found and f"above {key} = {limit}" in found
    fits = deep_merge(extra, {"cloudnativepg": {"parameters": {"max_connections": str(total)}}})
    render(*files, values=fits)
    assert budget.problems(_values(*files, extra=fits), fits, "values-prod.yaml") == []
