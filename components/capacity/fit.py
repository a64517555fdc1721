"""Does the workload fit the node pool at its maximum? Daemonset pods take their share of every
node first; the other pods are packed first-fit-decreasing onto nodes of the configured machine
type, each node offering its allocatable (nodes.py) and its pods-per-node limit. A stack is
refused when its largest pod fits no node, when the pool at nodePool.maxSize cannot hold every
pod, or when the pods per node leave no room; under 20% headroom it is a warning."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from components.capacity.nodes import Node, machine_types, node
from components.capacity.workloads import Workload
from components.settings.checks import NAMESPACE, set_cmd

WARN_HEADROOM = 0.20
MAX_POOL = 1000  # nodePool.maxSize's own bound


@dataclass(frozen=True)
class Shape:
    """Free room of one node once the daemonsets have their pods."""

    cpu_m: float
    mem_mib: float
    pods: int


@dataclass
class Fit:
    node: Node
    pool: int  # nodes at the maximum (nodePool.maxSize)
    free: Shape  # per node, after the daemonsets
    daemonsets: Shape  # what the daemonsets take on each node
    pods: list[Workload]  # one entry per pod at the maximum (daemonsets excluded)
    needed: int  # nodes the pods need at the maximum (first-fit decreasing)
    needed_at_rest: int  # nodes the pods need at their minimum replicas
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def demand(self) -> Shape:
        return Shape(
            sum(p.cpu_m for p in self.pods), sum(p.mem_mib for p in self.pods), len(self.pods)
        )

    @property
    def capacity(self) -> Shape:
        return Shape(
            self.free.cpu_m * self.pool, self.free.mem_mib * self.pool, self.free.pods * self.pool
        )

    @property
    def headroom(self) -> float:
        """1 - the most used of CPU, memory and pod slots over the pool at its maximum."""
        d, c = self.demand, self.capacity
        used = [d.cpu_m / c.cpu_m if c.cpu_m > 0 else math.inf]
        used += [d.mem_mib / c.mem_mib if c.mem_mib > 0 else math.inf]
        used += [d.pods / c.pods if c.pods > 0 else math.inf]
        return 1 - max(used)

    def summary(self) -> str:
        d, c = self.demand, self.capacity
        return (
            f"requests {d.cpu_m / 1000:.2f} CPU / {d.mem_mib / 1024:.1f} GiB / {d.pods} pods vs "
            f"{self.pool} x {self.node.machine_type} allocatable after daemonsets "
            f"{c.cpu_m / 1000:.2f} CPU / {c.mem_mib / 1024:.1f} GiB / {c.pods} pods; "
            f"headroom {self.headroom:.0%}; nodes needed {self.needed}"
        )


def expand(workloads: list[Workload], at_rest: bool = False) -> list[Workload]:
    """One entry per pod (daemonsets excluded)."""
    out = []
    for w in workloads:
        if not w.per_node:
            out += [w] * (w.at_rest if at_rest else w.replicas)
    return out


def daemonset_share(workloads: list[Workload]) -> Shape:
    per_node = [w for w in workloads if w.per_node]
    return Shape(sum(w.cpu_m for w in per_node), sum(w.mem_mib for w in per_node), len(per_node))


def pack(pods: list[Workload], free: Shape) -> int:
    """Nodes of room `free` that first-fit decreasing needs for `pods`; inf when a pod fits none.
    Two pods of a one-per-node workload (required anti-affinity) never share a node."""
    if not pods:
        return 0
    if free.pods <= 0 or any(p.cpu_m > free.cpu_m or p.mem_mib > free.mem_mib for p in pods):
        return math.inf

    def size(p: Workload) -> float:
        return max(p.cpu_m / max(free.cpu_m, 1), p.mem_mib / max(free.mem_mib, 1))

    bins: list[list] = []  # [cpu left, memory left, pod slots left, one-per-node names]
    for p in sorted(pods, key=size, reverse=True):
        for b in bins:
            if p.one_per_node and p.name in b[3]:
                continue
            if p.cpu_m <= b[0] and p.mem_mib <= b[1] and b[2] >= 1:
                b[0], b[1], b[2] = b[0] - p.cpu_m, b[1] - p.mem_mib, b[2] - 1
                if p.one_per_node:
                    b[3].add(p.name)
                break
        else:
            names = {p.name} if p.one_per_node else set()
            bins.append([free.cpu_m - p.cpu_m, free.mem_mib - p.mem_mib, free.pods - 1, names])
    return len(bins)


def fit(
    cloud: str, machine_type: str, pool: int, workloads: list[Workload], version: str = ""
) -> Fit | None:
    """The fit of `workloads` on `pool` nodes of `machine_type`; None for an unknown type."""
    n = node(cloud, machine_type, version)
    if n is None:
        return None
    ds = daemonset_share(workloads)
    free = Shape(n.cpu_m - ds.cpu_m, n.mem_mib - ds.mem_mib, n.max_pods - ds.pods)
    pods = expand(workloads)
    return Fit(n, pool, free, ds, pods, pack(pods, free), pack(expand(workloads, True), free))


def judge(cloud: str, f: Fit, workloads: list[Workload], region_price=None, arch=None) -> Fit:
    """Adds the refusals and warnings of `f`, each naming the key to change and a fix.
    `region_price(machine_type)`: $/hour or None, to suggest the cheapest type that fits;
    `arch(machine_type)`: its CPU architecture, so a fix never switches it."""
    n, key_mt, key_max = f.node, "nodePool.machineType", "nodePool.maxSize"
    mt = n.machine_type
    if f.free.pods <= 0 or f.free.cpu_m <= 0 or f.free.mem_mib <= 0:
        why = (
            f"{mt} leaves no room for the workload: its {n.max_pods} pods per node and "
            f"{n.cpu_m}m CPU / {n.mem_mib:.0f}Mi allocatable are taken by the "
            f"{f.daemonsets.pods} daemonset pods every node runs"
        )
        f.problems.append(_line(key_mt, why, _better(cloud, f, workloads, region_price, arch)))
        return f
    big = max(f.pods, key=lambda p: max(p.cpu_m / f.free.cpu_m, p.mem_mib / f.free.mem_mib))
    if big.cpu_m > f.free.cpu_m or big.mem_mib > f.free.mem_mib:
        better = _better(cloud, f, workloads, region_price, arch)
        what = f"{big.kind} {big.name} requests {big.cpu_m}m CPU / {big.mem_mib:.0f}Mi"
        room = f"a {mt} node has {f.free.cpu_m:.0f}m / {f.free.mem_mib:.0f}Mi for it"
        if better:
            f.problems.append(_line(key_mt, f"is too small: {what}, {room}", better))
        else:
            f.problems.append(_too_big_pod(big, f, what, room))
        return f
    spread = [w for w in workloads if w.one_per_node and w.replicas > f.pool]
    if spread:
        f.problems.append(_spread(spread[0], f))
        return f
    if f.needed > f.pool:
        limit = "pods per node" if _pods_bound(f) else "CPU and memory"
        why = (
            f"is too small for the workload at its maximum: {len(f.pods)} pods "
            f"({f.demand.cpu_m / 1000:.2f} CPU, {f.demand.mem_mib / 1024:.1f} GiB) need "
            f"{f.needed} {mt} nodes by {limit} (got maxSize {f.pool})"
        )
        fix = set_cmd(key_max, f.needed) if f.needed <= MAX_POOL else ""
        better = _better(cloud, f, workloads, region_price, arch)
        if better:
            fix = f"{fix}, or {better}" if fix else better
        f.problems.append(_line(key_max, why, fix or "reduce the chart's requests or replicas"))
        return f
    if f.headroom < WARN_HEADROOM:
        more = f.pool + max(1, math.ceil(f.pool * WARN_HEADROOM))
        f.warnings.append(
            f"{NAMESPACE}:{key_max} leaves {f.headroom:.0%} headroom at the workload's maximum "
            f"(under {WARN_HEADROOM:.0%}); consider: {set_cmd(key_max, min(more, MAX_POOL))}"
        )
    return f


def _spread(w: Workload, f: Fit) -> str:
    """A one-per-node workload with more pods than the pool has nodes: some stay Pending."""
    why = (
        f"is too small for {w.kind} {w.name}: its {w.replicas} pods must each run on a node of "
        f"their own (required anti-affinity on kubernetes.io/hostname), got maxSize {f.pool}"
    )
    fixes = [set_cmd("nodePool.maxSize", min(max(f.needed, w.replicas), MAX_POOL))]
    if w.replicas_key and f.pool >= 1:
        fixes.append(set_cmd(w.replicas_key, f.pool))
    return _line("nodePool.maxSize", why, ", or ".join(fixes))


def _pods_bound(f: Fit) -> bool:
    return len(f.pods) > f.free.pods * f.pool


def _better(cloud, f: Fit, workloads, region_price, arch) -> str:
    """`pulumi config set` of the cheapest listed machine type (same architecture, the configured
    family first) on which the workload fits nodePool.maxSize; failing that, the one needing the
    fewest nodes, with the maxSize it needs; "" when no listed type can hold the largest pod."""
    within, beyond = [], []
    for mt in machine_types(cloud):
        if mt == f.node.machine_type or (arch and arch(mt) != arch(f.node.machine_type)):
            continue
        other = fit(cloud, mt, f.pool, workloads)
        if not other or other.free.pods <= 0 or other.needed == math.inf:
            continue
        price = region_price(mt) if region_price else None
        # The configured family first (a larger size of what the team chose, never a switch to
        # burstable t3/e2-micro types to save cents), then the cheapest, then the smallest.
        rank = (_family(mt) != _family(f.node.machine_type), price or math.inf, other.node.vcpu, mt)
        (within if other.needed <= f.pool else beyond).append((rank, other))
    if within:
        return set_cmd("nodePool.machineType", min(within, key=lambda x: x[0])[1].node.machine_type)
    if beyond:
        best = min(beyond, key=lambda x: (x[1].needed, x[0]))[1]
        if best.needed <= MAX_POOL:
            return (
                f"{set_cmd('nodePool.machineType', best.node.machine_type)} && "
                f"{set_cmd('nodePool.maxSize', best.needed)}"
            )
    return ""


def _family(machine_type: str) -> str:
    """m6i.xlarge -> m6i; e2-standard-4 -> e2-standard; Standard_D4s_v5 -> Standard_Ds_v5."""
    if "." in machine_type:
        return machine_type.split(".")[0]
    azure = re.fullmatch(r"Standard_([A-Z]+)[0-9]+(.*)", machine_type)
    if azure:
        return f"Standard_{azure[1]}{azure[2]}"
    return machine_type.rsplit("-", 1)[0]


def _too_big_pod(big: Workload, f: Fit, what: str, room: str) -> str:
    """A pod larger than every listed machine: the chart value to lower, and a value that fits."""
    # The most the main container may request so the pod fits, beside its other containers.
    if big.cpu_m > f.free.cpu_m:
        part, value = "cpu", f"{int(f.free.cpu_m - big.others[0])}m"
    else:
        part, value = "memory", f"{int(f.free.mem_mib - big.others[1])}Mi"
    path = f"chart.values.{big.resources_path}.requests.{part}" if big.resources_path else ""
    why = f"is larger than any node of the machine types the check knows: {what}, {room}"
    if not path:
        return _line("nodePool.machineType", why, "a larger machine type")
    return _line(path, why, set_cmd(path, value))


def _line(key: str, why: str, fix: str) -> str:
    return f"{NAMESPACE}:{key} {why}; fix: {fix}"
