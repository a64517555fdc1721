"""The AKS node pools: zones, the user pool's name (every field AKS cannot change on a pool),
and the maintenance windows of the automatic upgrades."""

from __future__ import annotations

import ipaddress

from components.settings import Settings
from components.targets.base import short_hash

SYSTEM_POOL = "system"
SYSTEM_VM_SIZE = "Standard_D2s_v5"
SYSTEM_BOUNDS = (2, 3)  # min and max of the system pool
# Control-plane log categories sent to Log Analytics (AKS "Monitor AKS: resource logs").
CONTROL_PLANE_LOGS = (
    "kube-apiserver",
    "kube-audit-admin",
    "kube-controller-manager",
    "kube-scheduler",
    "cluster-autoscaler",
    "guard",
)
# The class AKS marks as its default.
AKS_DEFAULT_CLASS = "default"
# One node added at a time during an upgrade; none drained before its replacement is ready.
UPGRADE_SETTINGS = {"max_surge": "1", "max_unavailable": "0"}


def zones(settings: Settings) -> list[str]:
    """The Azure availability zones of the pools: 1..network.zoneCount."""
    return [str(z) for z in range(1, settings.network.zone_count + 1)]


def subnet_key(settings: Settings) -> str:
    """What identifies the pools' subnet before it exists: the configured subnet id, or the
    range of the subnet the program creates."""
    return settings.network.subnet_ids[0] if not settings.network.create else settings.network.cidr


def user_pool_name(settings: Settings) -> str:
    """The user pool's name, derived from every field AKS cannot change in place (zones, VM
    size, OS disk, subnet, Spot): changing one gives a new name, so Pulumi creates the new pool,
    then deletes (and drains) the old one, and the two never collide. Linux pool names: <= 12
    of [a-z0-9]."""
    np = settings.node_pool
    return "u" + short_hash(
        ",".join(zones(settings)),
        np.machine_type,
        str(np.disk_size_gb),
        subnet_key(settings),
        "spot" if np.spot else "",
    )


def legacy_user_pool_name(settings: Settings) -> str:
    """The user pool's name before zones and subnet were part of it (3d03071)."""
    np = settings.node_pool
    return "u" + short_hash(np.machine_type, str(np.disk_size_gb), "spot" if np.spot else "")


def _dns_ip(service_cidr: str) -> str:
    return str(ipaddress.ip_network(service_cidr)[10])


def maintenance_window(settings: Settings, day: str) -> dict:
    """One AKS maintenance window: weekly on `day`, the configured start and length (UTC),
    skipping the exclusions' dates."""
    m = settings.maintenance
    return {
        "schedule": {"weekly": {"day_of_week": day, "interval_weeks": 1}},
        "duration_hours": m.duration_hours,
        "start_time": m.start_time,
        "utc_offset": "+00:00",
        "not_allowed_dates": [{"start": e.start[:10], "end": e.end[:10]} for e in m.exclusions],
    }
