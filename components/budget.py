"""The database connection budget of the merged chart values, at settings time.

The chart computes the same budget (`pganalytics.connectionBudget` in
charts/pganalytics/templates/_helpers.tpl) and fails the render when an explicit
max_connections is below it; that happens only when Pulumi renders the chart, after other
resources may have changed. `problems` finds it while the settings load, before any resource,
and names the `pganalytics:chart.values` key that raised the budget.
tests/chart/test_connection_budget.py checks that this function and the chart's helper agree
for every values file and a few toggles.

With the CloudNativePG Cluster and its Pooler the chart checks another budget
(`pganalytics.cnpg.connectionBudget`): components/cnpg_budget.py, which `problems` applies then.
"""

from __future__ import annotations

from typing import Any

from components.settings.base import values_file_shown
from components.settings.checks import NAMESPACE

# PostgreSQL's default superuser_reserved_connections.
SUPERUSER_RESERVED = 3
# Values that change a term of the budget, most likely culprit first.
INPUTS = (
    "backend.autoscaling.maxReplicas",
    "backend.autoscaling.enabled",
    "backend.replicaCount",
    "mlService.enabled",
    "mlService.replicaCount",
    "mlService.workers",
    "collector.enabled",
    "collector.targets",
    "grafana.enabled",
    "grafana.datasource.maxOpenConns",
    "connectionBudget.backendPerPod",
    "connectionBudget.perCollector",
    "connectionBudget.mlServicePerWorker",
    "connectionBudget.reserve",
    "timescaledb.parameters.superuser_reserved_connections",
    "cloudnativepg.parameters.superuser_reserved_connections",
)


_ABSENT = object()


def lookup(values: dict, dotted: str, default: Any = None) -> Any:
    """The value at a dotted key of nested maps ("backup.persistence.size"), or `default` when
    a part of the path is missing. The one dotted-key walk of the program."""
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _get(values: dict, dotted: str, default: Any = None) -> Any:
    value = lookup(values, dotted, default)
    return default if value is None else value


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0  # as Helm's `int` reads a value it cannot convert


def api_pods(values: dict) -> int:
    """API pods at most: the HPA's maxReplicas while autoscaling, else replicaCount."""
    if _get(values, "backend.autoscaling.enabled") is True:
        return _int(_get(values, "backend.autoscaling.maxReplicas"))
    return _int(_get(values, "backend.replicaCount"))


def connection_budget(values: dict) -> dict[str, int]:
    """The chart's budget terms (same names) from the merged values, chart defaults included."""
    cb = _get(values, "connectionBudget", {})
    backend = api_pods(values) * _int(cb.get("backendPerPod"))
    grafana = (
        _int(_get(values, "grafana.datasource.maxOpenConns"))
        if _get(values, "grafana.enabled") is True
        else 0
    )
    ml = 0
    if _get(values, "mlService.enabled") is True:
        ml = (
            _int(_get(values, "mlService.replicaCount"))
            * _int(_get(values, "mlService.workers"))
            * _int(cb.get("mlServicePerWorker"))
        )
    collectors = 0
    if _get(values, "collector.enabled") is True:
        chart_db = [
            t
            for t in _get(values, "collector.targets", [])
            if isinstance(t, dict) and not t.get("host") and not t.get("nodeLocal")
        ]
        collectors = len(chart_db) * _int(cb.get("perCollector"))
    params = _get(values, f"{_server(values)}.parameters", {})
    superuser = _int(params.get("superuser_reserved_connections") or SUPERUSER_RESERVED)
    reserve = _int(cb.get("reserve"))
    terms = {
        "backend": backend,
        "grafana": grafana,
        "mlService": ml,
        "collectors": collectors,
        "reserve": reserve,
        "superuserReserved": superuser,
    }
    return {**terms, "total": sum(terms.values())}


def _server(values: dict) -> str:
    """Whose `parameters` the chart reads superuser_reserved_connections from."""
    return "cloudnativepg" if _get(values, "cloudnativepg.enabled") is True else "timescaledb"


def max_connections(values: dict) -> tuple[str, int]:
    """The key that declares the server's max_connections and its value, or ("", 0) when
    none does (the chart then sizes the bundled server to the budget itself). A CloudNativePG
    Cluster without a Pooler takes every connection: its max_connections (the chart reads
    100 when unset) holds this budget; with the Pooler, cnpg_budget applies instead."""
    if _get(values, "timescaledb.enabled") is True:
        params = _get(values, "timescaledb.parameters", {})
        if params.get("max_connections") is not None:
            return "timescaledb.parameters.max_connections", _int(params["max_connections"])
        return "", 0
    if _get(values, "cloudnativepg.enabled") is True:
        if _get(values, "cloudnativepg.pooler.enabled") is True:
            return "", 0
        from components.cnpg_budget import MAX_CONNECTIONS
        from components.cnpg_budget import max_connections as cnpg_max

        return MAX_CONNECTIONS, cnpg_max(values)
    declared = _int(_get(values, "externalDatabase.maxConnections"))
    return ("externalDatabase.maxConnections", declared) if declared else ("", 0)


def defined(tree: dict, dotted: str) -> bool:
    """Whether the dotted key is set in `tree` (to anything, null included)."""
    return lookup(tree, dotted, _ABSENT) is not _ABSENT


def blame(overrides: dict, inputs: tuple[str, ...]) -> str:
    """The first of `inputs` that `pganalytics:chart.values` sets, or ""."""
    return next((k for k in inputs if defined(overrides, k)), "")


def problems(values: dict, overrides: dict, values_file: str) -> list[str]:
    """One problem when the budget exceeds the declared max_connections, naming the
    `pganalytics:chart.values` key that raised it (or the values file) and the fixes. With the
    CloudNativePG Pooler: the chart's Pooler rule (components/cnpg_budget.py)."""
    from components import cnpg_budget

    if cnpg_budget.enabled(values):
        return cnpg_budget.problems(values, overrides, values_file)
    budget = connection_budget(values)
    limit_key, limit = max_connections(values)
    if not limit_key or limit >= budget["total"]:
        return []
    pods, per = api_pods(values), _int(_get(values, "connectionBudget.backendPerPod"))
    terms = (
        f"API {budget['backend']} = {pods} pods x {per}, Grafana {budget['grafana']}, "
        f"ML service {budget['mlService']}, collectors {budget['collectors']}, "
        f"reserve {budget['reserve']}, superuser reserved {budget['superuserReserved']}"
    )
    raise_to = -(-budget["total"] // 100) * 100
    fixes = [
        f"pulumi config set --path {NAMESPACE}:chart.values.{limit_key} {raise_to} "
        "(a new max_connections restarts the database; the server must allow it)"
    ]
    others = budget["total"] - budget["backend"]
    fit = (limit - others) // per if per else 0
    if _get(values, "backend.autoscaling.enabled") is True and fit >= 1:
        key = f"{NAMESPACE}:chart.values.backend.autoscaling.maxReplicas"
        fixes.append(f"pulumi config set --path {key} {fit}")
    blamed = blame(overrides, INPUTS)
    if not blamed and defined(overrides, limit_key):
        blamed = limit_key
    what = (
        f"the database connection budget to {budget['total']} ({terms}), above {limit_key} "
        f"= {limit}; fix: {' or '.join(fixes)}"
    )
    if blamed:
        return [f"{NAMESPACE}:chart.values.{blamed} raises {what}"]
    return [f"chart values of {values_file_shown(values_file)} raise {what}"]
