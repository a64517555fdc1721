"""The capacity check's model of the chart (components/capacity/workloads.py) against the real
helm render: for every values file and the toggles that add pods (collectors with several
targets, a node-local collector, the HPA, the ML service, the frontend, backups with a restore,
volume snapshots), every rendered Deployment, StatefulSet, DaemonSet, Job and CronJob has a
model with the same kind, the same replicas at the maximum (the HPA's maxReplicas for its
target) and the same pod requests. A workload added to the chart fails here until the model
knows it (docs/CAPACITY_COST.md: adding a workload).

The CloudNativePG Cluster and Pooler are custom resources: helm renders no pod for them. They
are translated here into the pods the operator creates (`operator_pods`): a Cluster's
`instances` pods, each the `postgres` container and the bootstrap-controller init container
with spec.resources, plus the Barman Cloud plugin's sidecar with the ObjectStore's
instanceSidecarConfiguration.resources when the plugin archives WAL; a Pooler's `instances`
PgBouncer pods with its template's containers."""

from __future__ import annotations

import pytest

from components.capacity.data import cpu_millis, mem_mib
from components.capacity.workloads import chart_workloads
from tests.chart.conftest import (
    CHART,
    CNPG_VALUES,
    PROGRAM_VALUES,
    deep_merge,
    pod_template,
    render,
)

KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
TOGGLES = {
    "collectors": {
        "collector": {
            "targets": [
                {"name": "bundled"},
                {
                    "name": "orders",
                    "host": "orders.db.example.com",
                    "databases": ["orders"],
                    "username": "monitor",
                    "existingSecret": "orders-db",
                    "passwordKey": "password",
                },
                {
                    "name": "node-pg",
                    "nodeLocal": True,
                    "databases": ["postgres"],
                    "username": "monitor",
                    "existingSecret": "node-pg",
                    "passwordKey": "password",
                },
            ]
        }
    },
    "hpa": {"backend": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 7}}},
    "ml-frontend": {
        "mlService": {"enabled": True, "replicaCount": 3},
        "redis": {"enabled": True},
        "frontend": {"enabled": True, "replicaCount": 2},
        # prod's max_connections (800) holds prod's budget; the ML pods' connections raise the
        # budget above it, and the chart refuses to render below the budget.
        "timescaledb": {"parameters": {"max_connections": "1000"}},
    },
    "backup-restore": {
        "backup": {
            "enabled": True,
            "destination": {"type": "gcs", "bucket": "pga-backups"},
            "serviceAccount": {
                "annotations": {"iam.gke.io/gcp-service-account": "bk@p.iam.gserviceaccount.com"}
            },
            "restore": {"enabled": True, "stamp": "20260101T021500Z"},
        }
    },
    "snapshots": {"volumeSnapshots": {"enabled": True, "className": "csi-snapclass"}},
}
# database.mode cloudnativepg (prod's and enterprise's default): the program's values.
CNPG_TOGGLES = {
    # Without the Pooler every API connection reaches PostgreSQL: max_connections holds 782.
    "cnpg-no-pooler-no-archive": {
        "cloudnativepg": {
            "pooler": {"enabled": False},
            "backup": {"enabled": False},
            "parameters": {"max_connections": "800"},
        }
    },
    "cnpg-five-instances": {"cloudnativepg": {"instances": 5, "pooler": {"instances": 4}}},
}
CASES = {
    **{f"values-{s}": (f"values-{s}.yaml", {}) for s in ("dev", "prod", "enterprise")},
    **{name: ("values-prod.yaml", extra) for name, extra in TOGGLES.items()},
    **{f"cnpg-{s}": (f"values-{s}.yaml", CNPG_VALUES) for s in ("prod", "enterprise")},
    **{
        name: ("values-prod.yaml", deep_merge(CNPG_VALUES, extra))
        for name, extra in CNPG_TOGGLES.items()
    },
}
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"


def _values_file(name: str) -> dict:
    import yaml

    return yaml.safe_load((CHART / name).read_text()) or {}


def _requests(containers: list[dict]) -> list[tuple[int, float]]:
    out = []
    for c in containers:
        req = (c.get("resources") or {}).get("requests") or {}
        out.append((cpu_millis(req.get("cpu")), mem_mib(req.get("memory"))))
    return out


def _pod_requests(run: list[dict], init: list[dict]) -> tuple[int, float]:
    run_r, init_r = _requests(run), _requests(init)
    cpu = max(sum(c for c, _ in run_r), max([c for c, _ in init_r], default=0))
    mem = max(sum(m for _, m in run_r), max([m for _, m in init_r], default=0.0))
    return cpu, mem


def _required_hostname_anti_affinity(cluster: dict) -> bool:
    aff = cluster["spec"].get("affinity") or {}
    return (
        aff.get("enablePodAntiAffinity") is True
        and aff.get("podAntiAffinityType") == "required"
        and aff.get("topologyKey") == "kubernetes.io/hostname"
    )


def operator_pods(objs: list[dict]) -> dict[str, tuple]:
    """name -> (kind, pods, cpu m, memory MiB, one per node) of the pods the CloudNativePG
    operator creates for the rendered Cluster and Pooler (helm renders no pod for them)."""
    stores = {o["metadata"]["name"]: o["spec"] for o in objs if o.get("kind") == "ObjectStore"}
    out = {}
    for o in objs:
        name = (o.get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/component")
        if o.get("kind") == "Cluster":
            spec = o["spec"]
            # cnpg-cluster.yaml sets no walStorage: one PVC per instance (cost.py counts that).
            assert "walStorage" not in spec
            postgres = {"name": "postgres", "resources": spec.get("resources") or {}}
            run = [postgres]
            for plugin in spec.get("plugins") or []:
                if plugin["name"] == BARMAN_PLUGIN and plugin.get("isWALArchiver"):
                    store = stores[plugin["parameters"]["barmanObjectName"]]
                    sidecar = store.get("instanceSidecarConfiguration") or {}
                    run.append(
                        {"name": "plugin-barman-cloud", "resources": sidecar.get("resources")}
                    )
            bootstrap = {"name": "bootstrap-controller", "resources": postgres["resources"]}
            cpu, mem = _pod_requests(run, [bootstrap])
            one = _required_hostname_anti_affinity(o)
            out[name] = ("Cluster", spec["instances"], cpu, round(mem, 3), one)
        elif o.get("kind") == "Pooler":
            spec = o["spec"]
            template = spec["template"]
            name = template["metadata"]["labels"]["app.kubernetes.io/component"]
            cpu, mem = _pod_requests(template["spec"]["containers"], [])
            required = (template["spec"].get("affinity") or {}).get("podAntiAffinity") or {}
            one = bool(required.get("requiredDuringSchedulingIgnoredDuringExecution"))
            out[name] = ("Pooler", spec["instances"], cpu, round(mem, 3), one)
    return out


def rendered_workloads(objs: list[dict]) -> dict[str, tuple]:
    """name -> (kind, replicas at the maximum, cpu m, memory MiB) of the rendered workloads."""
    hpa_max = {
        o["spec"]["scaleTargetRef"]["name"]: o["spec"]["maxReplicas"]
        for o in objs
        if o.get("kind") == "HorizontalPodAutoscaler"
    }
    out = {}
    for o in objs:
        if o.get("kind") not in KINDS:
            continue
        template = pod_template(o)
        spec = template["spec"]
        cpu, mem = _pod_requests(spec.get("containers", []), spec.get("initContainers", []))
        name = o["metadata"]["labels"]["app.kubernetes.io/component"]
        target = (template["metadata"].get("labels") or {}).get("pganalytics.io/collector-target")
        if target:
            name = f"{name}:{target}"
        if o["kind"] in ("Job", "CronJob"):
            name = f"{name}/{o['kind']}"
        if o["kind"] == "DaemonSet":
            replicas = "per node"
        elif o["kind"] in ("Job", "CronJob"):
            job = o["spec"]["jobTemplate"]["spec"] if o["kind"] == "CronJob" else o["spec"]
            replicas = job.get("parallelism", 1)
        else:
            replicas = hpa_max.get(o["metadata"]["name"], o["spec"].get("replicas", 1))
        assert name not in out, f"two workloads labelled {name}"
        out[name] = (o["kind"], replicas, cpu, round(mem, 3))
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_model_matches_render(case):
    values_file, extra = CASES[case]
    overrides = deep_merge(PROGRAM_VALUES, extra)
    objs = render(values_file, values=overrides)
    merged = deep_merge(_values_file("values.yaml"), _values_file(values_file), overrides)
    workloads = chart_workloads(merged)
    model = {
        w.name: (w.kind, "per node" if w.per_node else w.replicas, w.cpu_m, round(w.mem_mib, 3))
        for w in workloads
        if w.kind not in ("Cluster", "Pooler")
    }
    assert model == rendered_workloads(objs)
    crs = {
        w.name: (w.kind, w.replicas, w.cpu_m, round(w.mem_mib, 3), w.one_per_node)
        for w in workloads
        if w.kind in ("Cluster", "Pooler")
    }
    assert crs == operator_pods(objs)
    if case.startswith("cnpg"):
        assert "database" in crs  # the CloudNativePG cases do cover the Cluster


def test_cronjobs_never_run_two_pods_at_once():
    """The model counts one pod per CronJob: the chart's forbid concurrent runs."""
    objs = render("values-prod.yaml", values=deep_merge(PROGRAM_VALUES, TOGGLES["snapshots"]))
    for o in objs:
        if o.get("kind") == "CronJob":
            assert o["spec"]["concurrencyPolicy"] == "Forbid", o["metadata"]["name"]
