"""The connection budget of a CloudNativePG database behind its PgBouncer Pooler, at settings
time: the mirror of the chart's `pganalytics.cnpg.connectionBudget` and of its two refusals in
`pganalytics.cnpg.validate` (charts/pganalytics/templates/_cloudnativepg.tpl).

- clients of the Pooler (API pods at their maximum x connectionBudget.backendPerPod, plus the
  ML service's pools) must fit in cloudnativepg.pooler.maxClientConn: one PgBouncer pod may get
  every client after the others restart;
- server connections (PgBouncer pods x defaultPoolSize x 2 database/user pairs, plus the
  direct clients: Grafana, the collectors, the reserve of the bootstrap and backup Jobs) plus
  superuser_reserved_connections must fit in cloudnativepg.parameters.max_connections.

components/budget.py calls `problems` when the Cluster and its Pooler are on;
tests/chart/test_connection_budget.py checks that this module and the chart agree.
"""

from __future__ import annotations

from components.budget import _get, _int, api_pods, blame, connection_budget
from components.settings.base import values_file_shown
from components.settings.checks import NAMESPACE

# database/user pairs behind the Pooler: the API uses both databases, the ML service one.
PAIRS = 2
# What the chart assumes when cloudnativepg.parameters has no max_connections (PostgreSQL's).
DEFAULT_MAX_CONNECTIONS = 100
MAX_CLIENT_CONN = "cloudnativepg.pooler.maxClientConn"
MAX_CONNECTIONS = "cloudnativepg.parameters.max_connections"
# Values that change each side, most likely culprit first.
CLIENT_INPUTS = (
    "backend.autoscaling.maxReplicas",
    "backend.autoscaling.enabled",
    "backend.replicaCount",
    "mlService.enabled",
    "mlService.replicaCount",
    "mlService.workers",
    "connectionBudget.backendPerPod",
    "connectionBudget.mlServicePerWorker",
    MAX_CLIENT_CONN,
)
SERVER_INPUTS = (
    "cloudnativepg.pooler.defaultPoolSize",
    "cloudnativepg.pooler.instances",
    "collector.enabled",
    "collector.targets",
    "grafana.enabled",
    "grafana.datasource.maxOpenConns",
    "connectionBudget.perCollector",
    "connectionBudget.reserve",
    "cloudnativepg.parameters.superuser_reserved_connections",
    MAX_CONNECTIONS,
)


def enabled(values: dict) -> bool:
    """Whether the chart checks the budget against the Pooler (Cluster and Pooler both on)."""
    return (
        _get(values, "cloudnativepg.enabled") is True
        and _get(values, "cloudnativepg.pooler.enabled") is True
    )


def pooler_budget(values: dict) -> dict[str, int]:
    """The chart's `pganalytics.cnpg.connectionBudget` (same names) from the merged values."""
    base = connection_budget(values)
    pooler = _get(values, "cloudnativepg.pooler", {})
    servers = _int(pooler.get("instances")) * _int(pooler.get("defaultPoolSize")) * PAIRS
    direct = base["grafana"] + base["collectors"] + base["reserve"]
    superuser = base["superuserReserved"]
    return {
        "poolerClients": base["backend"] + base["mlService"],
        "poolerServers": servers,
        "direct": direct,
        "superuserReserved": superuser,
        "total": servers + direct + superuser,
    }


def max_connections(values: dict) -> int:
    """cloudnativepg.parameters.max_connections as the chart reads it (`default 100`)."""
    return _int(_get(values, MAX_CONNECTIONS) or DEFAULT_MAX_CONNECTIONS)


def problems(values: dict, overrides: dict, values_file: str) -> list[str]:
    """The chart's two refusals, each naming the `pganalytics:chart.values` key that caused it
    (or the values file) and the fixes."""
    b = pooler_budget(values)
    found = []
    limit = _int(_get(values, MAX_CLIENT_CONN))
    if b["poolerClients"] > limit:
        found.append(_line(_clients(values, b, limit), CLIENT_INPUTS, overrides, values_file))
    limit = max_connections(values)
    if b["total"] > limit:
        found.append(_line(_servers(values, b, limit), SERVER_INPUTS, overrides, values_file))
    return found


def _set(key: str, value) -> str:
    return f"pulumi config set --path {NAMESPACE}:chart.values.{key} {value}"


def _clients(values: dict, b: dict, limit: int) -> str:
    pods, per = api_pods(values), _int(_get(values, "connectionBudget.backendPerPod"))
    ml = b["poolerClients"] - pods * per
    fixes = [_set(MAX_CLIENT_CONN, -(-b["poolerClients"] // 100) * 100)]
    fit = (limit - ml) // per if per else 0
    if _get(values, "backend.autoscaling.enabled") is True and fit >= 1:
        fixes.append(_set("backend.autoscaling.maxReplicas", fit))
    return (
        f"the PgBouncer clients to {b['poolerClients']} (API {pods * per} = {pods} pods x {per}, "
        f"ML service {ml}), above {MAX_CLIENT_CONN} = {limit} (one PgBouncer pod may get every "
        f"client); fix: {' or '.join(fixes)}"
    )


def _servers(values: dict, b: dict, limit: int) -> str:
    pods = _int(_get(values, "cloudnativepg.pooler.instances"))
    size = _int(_get(values, "cloudnativepg.pooler.defaultPoolSize"))
    fixes = [
        _set(MAX_CONNECTIONS, -(-b["total"] // 100) * 100)
        + " (a new max_connections restarts the instances one by one)"
    ]
    fit = (limit - b["direct"] - b["superuserReserved"]) // (pods * PAIRS) if pods else 0
    if fit >= 1:
        fixes.append(_set("cloudnativepg.pooler.defaultPoolSize", fit))
    return (
        f"the server connections to {b['total']} (PgBouncer {b['poolerServers']} = {pods} pods "
        f"x defaultPoolSize {size} x {PAIRS} database/user pairs, direct clients {b['direct']}, "
        f"superuser reserved {b['superuserReserved']}), above {MAX_CONNECTIONS} = {limit}; "
        f"fix: {' or '.join(fixes)}"
    )


def _line(what: str, inputs: tuple[str, ...], overrides: dict, values_file: str) -> str:
    blamed = blame(overrides, inputs)
    if blamed:
        return f"{NAMESPACE}:chart.values.{blamed} raises {what}"
    return f"chart values of {values_file_shown(values_file)} raise {what}"
