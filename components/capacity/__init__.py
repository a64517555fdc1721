"""Capacity and cost at preview (docs/CAPACITY_COST.md).

`assess(settings)` works out, before any resource: every pod the stack runs at its maximum
(workloads.py: the merged chart values and data/addons.yaml), what a node of the pool offers
by the cloud's reservation formula (nodes.py, data/machines.yaml), whether the pods fit at
nodePool.maxSize (fit.py) and the monthly estimate (cost.py, data/prices.yaml). On `existing`
it reads the cluster's nodes when reachable (existing.py). `raise_problems` turns a refusal
into a ConfigError naming the key and the fix; `log` prints the preview lines (report.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.capacity.cost import Estimate, Prices, estimate
from components.capacity.existing import existing_fit, read_nodes
from components.capacity.fit import Fit, fit, judge
from components.capacity.report import cost_line
from components.capacity.report import log as _log
from components.capacity.workloads import AddonContext, Workload, addon_workloads, chart_workloads
from components.platform import traefik_replicas
from components.settings import ConfigError, Settings


@dataclass
class Assessment:
    workloads: list[Workload]
    fit: Fit | None = None  # None on existing, or for a machine type the table lacks
    estimate: Estimate | None = None
    summary: str = ""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return list(self.fit.problems) if self.fit else []


def workloads_of(settings: Settings, values: dict) -> list[Workload]:
    # components/platform.py: the operator and its plugin with database.mode cloudnativepg
    # (unless database.operator.install is false); cert-manager for TLS or for the plugin.
    cnpg = settings.database.cloudnativepg and settings.database.operator.install
    ctx = AddonContext(
        target=settings.target,
        traefik=settings.ingress.controller == "traefik",
        traefik_replicas=traefik_replicas(settings),
        cert_manager=(settings.ingress.tls or cnpg) and settings.ingress.install_cert_manager,
        cloudnativepg=cnpg,
    )
    return chart_workloads(values) + addon_workloads(ctx)


def assess(settings: Settings, values: dict | None = None, reader=read_nodes) -> Assessment:
    """The capacity verdict and the estimate. `values`: the merged chart values, values.yaml
    included (default: components.values.merged_values); `reader(kubeconfig, context)`: how
    `existing` reads its nodes (existing.read_nodes)."""
    if values is None:
        from components.values import merged_values

        values = merged_values(settings, include_defaults=True)
    a = Assessment(workloads_of(settings, values))
    unknown = sorted({w.name for w in a.workloads if not w.known})
    if unknown:
        a.notes.append(f"requests unknown, counted as pods only: {', '.join(unknown)}")
    if settings.target == "existing":
        _existing(settings, a, reader)
        a.estimate = Estimate("existing", "")
        return a
    np, prices = settings.node_pool, Prices(settings.target, settings.region)
    a.fit = fit(
        settings.target, np.machine_type, np.max_size, a.workloads, settings.kubernetes_version
    )
    if a.fit is None:
        a.warnings.append(
            f"pganalytics:nodePool.machineType {np.machine_type} is not in the capacity table "
            "(components/capacity/data/machines.yaml): capacity not checked"
        )
    else:
        price = lambda mt: prices.machine(mt)[0]  # noqa: E731
        judge(settings.target, a.fit, a.workloads, price, _arch(settings.target))
        a.summary = f"{a.fit.summary()} ({a.fit.node.how})"
        a.warnings += a.fit.warnings
    a.estimate = estimate(settings, values, a.fit.needed_at_rest if a.fit else None, prices)
    return a


def _arch(cloud: str):
    """EKS picks the node image by CPU architecture: a suggested type keeps the configured one."""
    if cloud != "aws":
        return None
    from components.targets.eks import ami_type

    return ami_type


def _existing(settings: Settings, a: Assessment, reader) -> None:
    from components.targets.existing import bind

    try:
        context = bind(settings).context
    except ConfigError:
        context = settings.kube_context  # the target reports the kubeconfig problem itself
    nodes, why = reader(settings.kubeconfig, context)
    if not nodes:
        why = why or "the cluster has no schedulable node"
        a.notes.append(f"not checked on target existing: {why}")
        return
    a.summary, warnings = existing_fit(nodes, a.workloads)
    a.warnings += warnings


def raise_problems(settings: Settings, a: Assessment) -> None:
    """Refuses the stack, before any resource, when its pods cannot be scheduled."""
    if a.problems:
        raise ConfigError(a.problems, settings.stack)


def log(a: Assessment) -> None:
    _log(a.notes, a.summary, a.warnings, a.estimate)


__all__ = ["Assessment", "assess", "cost_line", "log", "raise_problems"]
