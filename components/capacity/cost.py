"""The monthly estimate of a stack from the dated price table (data/prices.yaml): nodes at the
count the workload needs at rest (never under nodePool.minSize), their boot disks, the chart's
volumes, the load balancer, NAT gateways, the control-plane fee and the backup bucket. A part
the table has no price for is listed under `missing`, never guessed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from components.capacity.data import gib, table
from components.capacity.workloads import get

if TYPE_CHECKING:
    from components.settings import Settings


@dataclass
class Line:
    item: str
    quantity: float
    unit: str
    unit_price: float | None = None
    source: str = ""

    @property
    def monthly(self) -> float | None:
        return None if self.unit_price is None else self.quantity * self.unit_price


@dataclass
class Estimate:
    cloud: str
    region: str
    lines: list[Line] = field(default_factory=list)
    spot: dict | None = None  # nodes' monthly range under Spot, when the pool is Spot

    @property
    def adopted(self) -> bool:
        """Target existing: the stack adopts a cluster it does not create, whose nodes are
        paid by whoever runs it; nothing is priced, rather than a total of 0 read as "free"."""
        return self.cloud == "existing"

    @property
    def priced_total(self) -> float:
        """The sum of the parts that have a price; the whole cost only when `complete`."""
        return sum(line.monthly or 0.0 for line in self.lines)

    @property
    def missing(self) -> list[str]:
        if self.adopted:
            return ["the adopted cluster (target existing)"]
        return [line.item for line in self.lines if line.unit_price is None]

    @property
    def complete(self) -> bool:
        return not self.missing

    def summary(self, currency: str) -> str:
        """The estimate in one phrase that never passes a partial sum off as the total."""
        if self.adopted:
            return "not estimated: target existing adopts a cluster this stack does not create"
        if self.complete:
            return f"{self.priced_total:.2f} {currency} a month"
        priced = any(line.monthly is not None for line in self.lines)
        head = (
            f"partial estimate: {self.priced_total:.2f} {currency} a month for what is priced"
            if priced
            else "partial estimate: nothing priced"
        )
        return f"{head}; not priced: {', '.join(self.missing)}"

    def output(self) -> dict:
        """The stack output estimatedMonthlyCost. `total` is null while a part has no price:
        `pricedTotal` is then the sum of the priced parts only, and `missing` names the rest."""
        prices = table("prices")
        return {
            "total": round(self.priced_total, 2) if self.complete else None,
            "pricedTotal": round(self.priced_total, 2),
            "complete": self.complete,
            "summary": self.summary(prices["currency"]),
            "currency": prices["currency"],
            "estimate": True,
            "tableDate": prices["date"],
            "source": (
                "none: the cluster's nodes are its owner's cost (docs/CAPACITY_COST.md)"
                if self.adopted
                else f"list prices of {self.cloud} {self.region} from components/capacity/data/"
                "prices.yaml (sources and dates there; docs/CAPACITY_COST.md)"
            ),
            "missing": self.missing,
            "spot": self.spot,
            "breakdown": [
                {
                    "item": line.item,
                    "quantity": round(line.quantity, 2),
                    "unit": line.unit,
                    "unitPrice": line.unit_price,
                    "monthly": None if line.monthly is None else round(line.monthly, 2),
                    "source": line.source,
                }
                for line in self.lines
            ],
        }


class Prices:
    """Price lookups for one cloud and region."""

    def __init__(self, cloud: str, region: str):
        data = table("prices")
        self.cloud, self.region = cloud, region
        self.hours = float(data["hours_per_month"])
        self.sources = data.get("sources") or {}
        self.cloud_data = data.get(cloud) or {}
        self.regional = (self.cloud_data.get("regions") or {}).get(region) or {}

    def _url(self, source: str) -> str:
        return (self.sources.get(source) or {}).get("url", "")

    def machine(self, machine_type: str, kind: str = "on_demand") -> tuple[float | None, str]:
        m = self.regional.get("machines") or {}
        price = (m.get(kind) or {}).get(machine_type)
        return price, self._url(m.get("source", "")) if price is not None else ""

    def entry(self, key: str, sub: str = "") -> dict:
        """The table's entry for `key` (and `sub`) in this region, {} when it has none."""
        entry = self.regional.get(key) or {}
        return (entry.get(sub) or {}) if sub else entry

    def item(self, key: str, sub: str = "") -> tuple[float | None, str]:
        entry = self.entry(key, sub)
        if not entry:
            return None, ""
        return float(entry["price"]), self._url(entry.get("source", ""))

    def spot_discount(self) -> float | None:
        entry = self.cloud_data.get("spot_max_discount")
        return float(entry["value"]) if entry else None


def node_lines(p: Prices, machine_type: str, count: int, label: str) -> Line:
    price, source = p.machine(machine_type)
    hourly = Line(f"{label}: {count} x {machine_type}", count * p.hours, "node-hours")
    hourly.unit_price, hourly.source = price, source
    return hourly


def spot_range(p: Prices, machine_type: str, count: int) -> dict | None:
    """Monthly range of `count` Spot nodes: GCP from its Spot price table, AWS and Azure from
    the documented maximum discount up to the on-demand price."""
    on_demand, _ = p.machine(machine_type)
    if on_demand is None:
        return None
    spot, _ = p.machine(machine_type, "spot")
    discount = p.spot_discount()
    if spot is not None:
        low = spot
    elif discount is not None:
        low = on_demand * (1 - discount)
    else:
        return None
    hours = count * p.hours
    return {
        "nodesMonthlyLow": round(low * hours, 2),
        "nodesMonthlyHigh": round(on_demand * hours, 2),
        "basis": "Spot price of the table" if spot is not None else f"up to {discount:.0%} off",
    }


# Node boot disks: the EKS node groups' launch template gives them gp3 root volumes
# (targets/eks/nodes.py); GKE's node pool sets pd-balanced (targets/gke.py; Hyperdisk-only
# families boot from hyperdisk-balanced); AKS picks the managed OS disk itself (no price:
# Azure bills managed disks per size tier).
BOOT_DISK = {"aws": "gp3", "gcp": "pd-balanced", "azure": "managed OS disk"}
# What the Traefik Service of type LoadBalancer creates: an NLB (the in-tree AWS provider,
# aws-load-balancer-type: nlb in targets/eks/), a regional forwarding rule of an external
# passthrough Network Load Balancer on GKE, rules on the AKS cluster's Standard load balancer.
LOAD_BALANCER = {"aws": "NLB", "gcp": "forwarding rule", "azure": "Standard LB rules"}
# The backup bucket's storage class (components/backup): S3 Standard (no transition rule), a
# regional Cloud Storage STANDARD bucket, a StorageV2 Standard_GRS account with access tier Hot.
BUCKET_CLASS = {
    "aws": ("s3_standard", "S3 Standard"),
    "gcp": ("gcs_standard", "Cloud Storage Standard, regional"),
    "azure": ("blob_hot_grs", "Blob Hot GRS"),
}


def estimate(settings: Settings, values: dict, needed_at_rest: float | None, p: Prices) -> Estimate:
    """The monthly estimate of a cloud stack. `needed_at_rest`: the nodes the pods need at their
    minimum replicas (fit.py), or None when the capacity check could not run."""
    e = Estimate(settings.target, settings.region)
    np = settings.node_pool
    count = np.min_size
    if needed_at_rest is not None and needed_at_rest != math.inf:
        count = min(max(np.min_size, int(needed_at_rest)), np.max_size)
    e.lines.append(node_lines(p, np.machine_type, count, "nodes at rest"))
    if settings.target == "azure":
        from components.targets.aks import SYSTEM_VM_SIZE

        # The system pool at its minimum (components/targets/aks/: min_count 2).
        e.lines.append(node_lines(p, SYSTEM_VM_SIZE, 2, "AKS system pool"))
    if np.spot:
        e.spot = spot_range(p, np.machine_type, count)
    disk = BOOT_DISK[settings.target]
    e.lines.append(_per_gb(p, f"node boot disks ({disk})", count * np.disk_size_gb, disk))
    size = sum(_volumes(values))
    if size:
        kind = settings.storage.type
        e.lines.append(_per_gb(p, f"chart volumes ({kind})", size, kind))
    if settings.ingress.controller == "traefik" and settings.ingress.service_type == "LoadBalancer":
        item = f"load balancer (Traefik Service, {LOAD_BALANCER[settings.target]})"
        e.lines.append(_hourly(p, item, 1, "load_balancer_hour"))
    nats = _nat_gateways(settings)
    if nats and settings.target == "gcp":
        e.lines.append(_cloud_nat(p, count))
    elif nats:
        e.lines.append(_hourly(p, f"NAT gateways: {nats}", nats, "nat_gateway_hour"))
    e.lines.append(_control_plane(settings, p))
    if get(values, "backup.enabled"):
        key, label = BUCKET_CLASS[settings.target]
        price, source = p.item("object_storage_gb_month", key)
        item = f"backup bucket ({label}, upper bound)"
        e.lines.append(Line(item, _bucket_gb(settings, values), "GB-months", price, source))
    return e


def _cloud_nat(p: Prices, nodes: int) -> Line:
    """Cloud NAT bills each VM it serves by the hour, up to a cap of VMs per gateway."""
    entry = p.entry("nat_gateway_vm_hour")
    vms = min(nodes, int(entry["vm_cap"])) if entry else nodes
    price, source = p.item("nat_gateway_vm_hour")
    return Line(f"Cloud NAT: 1 gateway, {vms} node VMs", vms * p.hours, "VM-hours", price, source)


def _per_gb(p: Prices, item: str, gb: float, disk: str) -> Line:
    price, source = p.item("disk_gb_month", disk)
    return Line(item, gb, "GB-months", price, source)


def _hourly(p: Prices, item: str, count: int, key: str) -> Line:
    price, source = p.item(key)
    return Line(item, count * p.hours, "hours", price, source)


def _volumes(values: dict):
    """GiB of the chart's PersistentVolumeClaims."""
    for part in ("timescaledb", "grafana", "redis", "backup"):
        pers = get(values, f"{part}.persistence") or {}
        if get(values, f"{part}.enabled") and pers.get("enabled") and not pers.get("existingClaim"):
            yield gib(pers.get("size"))
    yield from _cnpg_volumes(values)


def _cnpg_volumes(values: dict):
    """The CloudNativePG Cluster's PVCs: the operator makes one data volume of
    cloudnativepg.storage.size per instance. cnpg-cluster.yaml sets no walStorage (WAL lives on
    the data volume), so there is no second PVC per instance
    (tests/chart/test_capacity_model.py fails if the template gains one)."""
    if get(values, "cloudnativepg.enabled"):
        instances = int(get(values, "cloudnativepg.instances") or 1)
        yield instances * gib(get(values, "cloudnativepg.storage.size"))


def _nat_gateways(settings: Settings) -> int:
    net = settings.network
    if settings.target == "aws" and net.create:
        return net.zone_count if net.nat_gateway == "perZone" else 1
    if settings.target == "gcp" and net.create and settings.cluster.private_nodes:
        return 1  # one Cloud NAT gateway (components/targets/gke.py)
    return 0


def _control_plane(settings: Settings, p: Prices) -> Line:
    if settings.target == "azure" and settings.cluster.tier == "free":
        entry = p.cloud_data.get("control_plane_hour_free_tier") or {}
        source = (p.sources.get(entry.get("source", "")) or {}).get("url", "")
        return Line("control plane (AKS free tier)", p.hours, "hours", entry.get("price"), source)
    price, source = p.item("control_plane_hour")
    return Line("control plane", p.hours, "hours", price, source)


def _bucket_gb(settings: Settings, values: dict) -> float:
    """Dumps the bucket keeps: the backup volume holds `backup.retentionDays` dumps, so one dump
    is at most its size divided by that; times the bucket's retention in days."""
    days = max(int(get(values, "backup.retentionDays") or 1), 1)
    volume = get(values, "backup.persistence.size") or get(values, "backup.scratchSizeLimit")
    return gib(volume) / days * settings.backup.retention_days
