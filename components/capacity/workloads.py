"""Every pod the stack runs at its maximum, computed from the merged chart values (no helm at
run time) and from the add-ons the program installs (data/addons.yaml).

A pod requests the larger of the sum of its containers and its largest init container (the
scheduler's rule). Each chart workload is one small function below, registered with
@chart_workload, that reads the values its template reads; tests/chart/test_capacity_model.py
renders the chart with the real helm and fails when a rendered Deployment, StatefulSet,
DaemonSet, Job or CronJob has no model, or when its requests or replicas differ. Adding one is
one function here (docs/CAPACITY_COST.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from components.budget import lookup as get
from components.capacity.data import cpu_millis, mem_mib, table


@dataclass(frozen=True)
class Workload:
    """Pods of one workload: `replicas` at the maximum (HPA max, one per collector target, one
    per running Job), `min_replicas` at rest; a DaemonSet (per_node) runs one on every node."""

    # The chart's component label (app.kubernetes.io/component), then :<collector target>, or
    # /<kind> for Jobs and CronJobs (a component may have both).
    name: str
    kind: str
    replicas: int
    cpu_m: int  # requests of one pod
    mem_mib: float
    per_node: bool = False
    min_replicas: int | None = None
    # Values path (under pganalytics:chart.values) of the main container's requests, for a fix.
    resources_path: str = ""
    # What the pod requests with its main container at zero (sidecars, init containers).
    others: tuple[int, float] = (0, 0.0)
    known: bool = True  # False: no stored source gave the requests (counted as a pod only)
    source: str = ""
    # Required pod anti-affinity on kubernetes.io/hostname: never two of these pods on a node.
    one_per_node: bool = False
    # Config key (under pganalytics:) that sets `replicas`, for a fix; "" when none is named.
    replicas_key: str = ""

    @property
    def at_rest(self) -> int:
        return self.replicas if self.min_replicas is None else self.min_replicas


def pod(containers: list[dict], init: list[dict] = ()) -> tuple[int, float]:
    """Effective requests of a pod from its containers' `resources` maps."""

    def requests(resources: dict) -> tuple[int, float]:
        req = (resources or {}).get("requests") or {}
        return cpu_millis(req.get("cpu")), mem_mib(req.get("memory"))

    run = [requests(c) for c in containers]
    first = [requests(c) for c in init] or [(0, 0.0)]
    cpu = max(sum(c for c, _ in run), max(c for c, _ in first))
    mem = max(sum(m for _, m in run), max(m for _, m in first))
    return cpu, mem


ChartModel = Callable[[dict], Iterator[Workload]]
CHART_WORKLOADS: list[ChartModel] = []


def chart_workload(fn: ChartModel) -> ChartModel:
    CHART_WORKLOADS.append(fn)
    return fn


def _workload(name, kind, values, containers, init=(), replicas=1, **extra) -> Workload:
    run, first = [get(values, p) or {} for p in containers], [get(values, p) or {} for p in init]
    cpu, mem = pod(run, first)
    others = pod([{}, *run[1:]], first)
    return Workload(
        name, kind, replicas, cpu, mem, resources_path=containers[0], others=others, **extra
    )


WAIT = "waitImage.resources"  # the chart's wait-for-<dependency> init containers
# The TimescaleDB pod's password-sync sidecar has fixed requests in its template.
PASSWORD_SYNC = "_fixed.passwordSync"
FIXED = {"_fixed": {"passwordSync": {"requests": {"cpu": "10m", "memory": "16Mi"}}}}


@chart_workload
def backend(v: dict) -> Iterator[Workload]:
    init = [WAIT] + (["databaseBootstrap.resources"] if get(v, "databaseBootstrap.enabled") else [])
    hpa = get(v, "backend.autoscaling.enabled")
    top = get(v, "backend.autoscaling.maxReplicas") if hpa else get(v, "backend.replicaCount")
    low = get(v, "backend.autoscaling.minReplicas") if hpa else top
    yield _workload(
        "backend", "StatefulSet", v, ["backend.resources"], init, int(top), min_replicas=int(low)
    )


@chart_workload
def collectors(v: dict) -> Iterator[Workload]:
    if not get(v, "collector.enabled"):
        return
    for target in get(v, "collector.targets") or []:
        kind = "DaemonSet" if target.get("nodeLocal") else "Deployment"
        yield _workload(
            f"collector:{target.get('name')}", kind, v, ["collector.resources"], [WAIT],
            per_node=kind == "DaemonSet",
        )  # fmt: skip


@chart_workload
def timescaledb(v: dict) -> Iterator[Workload]:
    if get(v, "timescaledb.enabled"):
        merged = {**v, **FIXED}
        yield _workload(
            "timescaledb", "StatefulSet", merged, ["timescaledb.resources", PASSWORD_SYNC]
        )


# The CloudNativePG objects are custom resources: the operator creates their pods.
# Cluster (cnpg-cluster.yaml): `instances` pods, each a `postgres` container and the init
# container bootstrap-controller, both with spec.resources (cloudnative-pg pkg/specs,
# createBootstrapContainer); required anti-affinity on kubernetes.io/hostname, so one per node.
# With WAL archiving the Barman Cloud plugin adds its sidecar to every instance pod, with the
# requests of the ObjectStore's spec.instanceSidecarConfiguration.resources (plugin-barman-cloud
# internal/cnpgi/operator/lifecycle_resources.go); cnpg-objectstore.yaml sets none: no requests.
BARMAN_SIDECAR = "_fixed.barmanSidecar"
CNPG_FIXED = {"_fixed": {"barmanSidecar": {}}}
# The operator's initdb / join / full-recovery Jobs of an instance run with the same requests
# before that instance's pod exists, so they never add to the instances' pods.


@chart_workload
def cloudnativepg(v: dict) -> Iterator[Workload]:
    if not get(v, "cloudnativepg.enabled"):
        return
    merged = {**v, **CNPG_FIXED}
    main = "cloudnativepg.resources"
    containers = [main] + ([BARMAN_SIDECAR] if get(v, "cloudnativepg.backup.enabled") else [])
    n = int(get(v, "cloudnativepg.instances", 1))
    # bootstrap-controller requests what `postgres` does, never more than the containers' sum:
    # left out, so a fix for the pod's size counts the sidecar only beside the main container.
    yield _workload(
        "database", "Cluster", merged, containers, replicas=n,
        one_per_node=True, replicas_key="chart.values.cloudnativepg.instances",
    )  # fmt: skip
    if get(v, "cloudnativepg.pooler.enabled"):
        # Pooler (cnpg-pooler.yaml): `instances` PgBouncer pods, the `pgbouncer` container with
        # the template's resources (its bootstrap-controller init container has none);
        # preferred anti-affinity only, so several may share a node.
        pods = int(get(v, "cloudnativepg.pooler.instances", 1))
        yield _workload(
            "database-pooler", "Pooler", v, ["cloudnativepg.pooler.resources"], replicas=pods
        )


@chart_workload
def redis(v: dict) -> Iterator[Workload]:
    if get(v, "redis.enabled"):
        yield _workload("redis", "StatefulSet", v, ["redis.resources"])


@chart_workload
def grafana(v: dict) -> Iterator[Workload]:
    if get(v, "grafana.enabled"):
        yield _workload("grafana", "Deployment", v, ["grafana.resources"], [WAIT])


@chart_workload
def ml_service(v: dict) -> Iterator[Workload]:
    if get(v, "mlService.enabled"):
        n = int(get(v, "mlService.replicaCount", 1))
        yield _workload("ml-service", "Deployment", v, ["mlService.resources"], [WAIT], n)


@chart_workload
def frontend(v: dict) -> Iterator[Workload]:
    if get(v, "frontend.enabled"):
        n = int(get(v, "frontend.replicaCount", 1))
        yield _workload("frontend", "Deployment", v, ["frontend.resources"], replicas=n)


@chart_workload
def jobs(v: dict) -> Iterator[Workload]:
    """Jobs are counted as running at the same time as everything else (the bootstrap runs on
    every install and rotation; a backup or snapshot can start while the API is at its HPA max)."""
    if get(v, "databaseBootstrap.enabled"):
        yield _workload("bootstrap/Job", "Job", v, ["databaseBootstrap.resources"])
    if get(v, "backup.enabled"):
        # With a destination the dump runs as an init container before the upload.
        upload = bool(get(v, "backup.destination.type"))
        containers = ["backup.uploader.resources"] if upload else ["backup.resources"]
        init = ["backup.resources"] if upload else []
        yield _workload("backup/CronJob", "CronJob", v, containers, init)
        if get(v, "backup.restore.enabled"):
            yield _workload(
                "backup/Job", "Job", v, ["backup.resources"], ["backup.uploader.resources"]
            )
    if get(v, "volumeSnapshots.enabled"):
        yield _workload("volume-snapshots/CronJob", "CronJob", v, ["volumeSnapshots.resources"])


def chart_workloads(values: dict) -> list[Workload]:
    """The chart's pods at their maximum, from the merged values (values.yaml included)."""
    return [w for model in CHART_WORKLOADS for w in model(values)]


@dataclass
class AddonContext:
    """What decides which add-ons run: the target and the program's own choices."""

    target: str
    traefik: bool
    traefik_replicas: int
    cert_manager: bool
    cloudnativepg: bool = False  # the program installs the operator and the Barman Cloud plugin
    extra: dict = field(default_factory=dict)


def addon_workloads(ctx: AddonContext) -> list[Workload]:
    """The add-ons of data/addons.yaml that run on this stack."""
    data = table("addons")
    when = {
        "always": True,
        "traefik": ctx.traefik,
        "cert-manager": ctx.cert_manager,
        "cloudnativepg": ctx.cloudnativepg,
        **ctx.extra,
    }
    out = []
    for entry in [*data.get("addons", []), *(data.get(ctx.target) or [])]:
        if not when.get(entry["when"], False):
            continue
        req = entry.get("requests")
        per_node = entry["kind"] == "DaemonSet"
        replicas = entry.get("replicas", 1)
        replicas = ctx.traefik_replicas if replicas == "traefik" else int(replicas)
        out.append(
            Workload(
                entry["name"],
                entry["kind"],
                1 if per_node else replicas,
                int((req or {}).get("cpu", 0)),
                float((req or {}).get("memory", 0)),
                per_node=per_node,
                known=req is not None,
                source=entry.get("source", ""),
            )
        )
    return out
