"""The chart's persistent volumes, and what a change of their size or StorageClass means.

- Growth: a PVC the chart renders itself (Grafana, backup) is updated in place (the
  Kubernetes provider plans `resources.requests` as an update). A PVC made from a StatefulSet's
  `volumeClaimTemplates` (TimescaleDB, Redis) is grown by a PersistentVolumeClaimPatch, and the
  StatefulSet, whose templates are immutable, is replaced with orphan deletion so its pods and
  their volumes stay (see release.py). Both need a StorageClass with allowVolumeExpansion.
- Shrinking, or changing the StorageClass of a live volume, cannot be done in place (the API
  refuses the first; the second would replace the volume and its data): it is a config error
  naming the key and the procedure.

"Live" is what the last successful update recorded (previous.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from components import values as chart_values
from components.settings import NAMESPACE, RELEASE_NAME, ConfigError

if TYPE_CHECKING:
    from components.previous import PreviousState
    from components.settings import Settings

CHART_NAME = "pganalytics"
# Components whose claims come from a StatefulSet's volumeClaimTemplates.
TEMPLATE_COMPONENTS = ("timescaledb", "redis")
QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")
UNITS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
DOC = "docs/OPERATIONS.md#volumes"


def quantity_bytes(text: str) -> int | None:
    """Bytes of a Kubernetes storage quantity (`20Gi`, `500M`), None when not one."""
    match = QUANTITY.fullmatch(str(text))
    if not match:
        return None
    return int(Decimal(match.group(1)) * UNITS[match.group(2)])


def fullname(values: dict[str, Any]) -> str:
    """`pganalytics.fullname` of the chart's _helpers.tpl, for the release the program names."""
    if values.get("fullnameOverride"):
        return str(values["fullnameOverride"])[:40].rstrip("-")
    name = values.get("nameOverride") or CHART_NAME
    full = RELEASE_NAME if name in RELEASE_NAME else f"{RELEASE_NAME}-{name}"
    return full[:40].rstrip("-")


@dataclass(frozen=True)
class Volume:
    name: str  # chart component: timescaledb, redis, grafana, backup
    size: str
    storage_class: str  # "" = the cluster's default class
    # StatefulSet that owns the claims through volumeClaimTemplates; None for a chart PVC.
    workload: str | None
    claims: tuple[str, ...]  # PersistentVolumeClaim object names

    def record(self) -> dict[str, str]:
        return {"size": self.size, "storageClass": self.storage_class}


def chart_volumes(settings: Settings) -> dict[str, Volume]:
    """Every persistent volume the chart renders with the merged values."""
    values = chart_values.merged_values(settings, include_defaults=True)
    base = fullname(values)
    default_class = (values.get("global") or {}).get("storageClass") or ""
    found: dict[str, Volume] = {}

    def persistence(component: str) -> dict[str, Any]:
        return (values.get(component) or {}).get("persistence") or {}

    def storage_class(component: str) -> str:
        return persistence(component).get("storageClass") or default_class

    # StatefulSets with one replica and a claim template named `data`.
    for component in TEMPLATE_COMPONENTS:
        block = values.get(component) or {}
        if block.get("enabled") and persistence(component).get("enabled"):
            workload = f"{base}-{component}"
            found[component] = Volume(
                component,
                str(persistence(component).get("size")),
                storage_class(component),
                workload,
                (f"data-{workload}-0",),
            )
    grafana = values.get("grafana") or {}
    if grafana.get("enabled") and persistence("grafana").get("enabled"):
        found["grafana"] = Volume(
            "grafana",
            str(persistence("grafana").get("size")),
            storage_class("grafana"),
            None,
            (f"{base}-grafana",),
        )
    backup = values.get("backup") or {}
    backup_pvc = persistence("backup")
    if backup.get("enabled") and backup_pvc.get("size") and not backup_pvc.get("existingClaim"):
        found["backup"] = Volume(
            "backup", str(backup_pvc["size"]), storage_class("backup"), None, (f"{base}-backup",)
        )
    return found


# Record field of a volume whose claims carry a PersistentVolumeClaimPatch (release.py).
PATCHED = "claimPatch"


def record(volume_plan: VolumePlan) -> dict[str, dict[str, str]]:
    """The stack output read back by the next run: each volume's size and class, and whether
    its claims carry a claim patch."""
    return {
        name: {**v.record(), **({PATCHED: "true"} if name in volume_plan.patched else {})}
        for name, v in sorted(volume_plan.current.items())
    }


def _class_key(settings: Settings, name: str) -> str:
    override = ((settings.chart.values.get(name) or {}).get("persistence") or {}).get(
        "storageClass"
    )
    return f"chart.values.{name}.persistence.storageClass" if override else "storage.className"


def _command(key: str, value: str) -> str:
    flag = " --path" if "." in key else ""
    return f'pulumi config set{flag} {NAMESPACE}:{key} "{value}"'


def _move(name: str) -> str:
    """The procedure that moves a volume's data to a new volume."""
    enabled = f"{NAMESPACE}:chart.values.{name}.persistence.enabled"
    return (
        f"to move the data to a new volume: back up, set {enabled} false and update, delete "
        f"the old claim, remove that setting and set the new value, update, restore "
        f"(see {DOC})"
    )


def changes(
    settings: Settings, previous: PreviousState, current: dict[str, Volume]
) -> tuple[dict[str, Volume], list[str]]:
    """(volumes that grow, problems) of the `current` volumes against the live ones: growth is
    planned, a shrink or a class change refused."""
    grown: dict[str, Volume] = {}
    problems: list[str] = []
    if not previous.volumes:
        return grown, problems
    for name, volume in current.items():
        live = previous.volumes.get(name)
        if not live:
            continue
        size_key = f"chart.values.{name}.persistence.size"
        old_size, new_size = live.get("size", ""), volume.size
        old_bytes, new_bytes = quantity_bytes(old_size), quantity_bytes(new_size)
        if old_bytes is not None and new_bytes is not None:
            if new_bytes < old_bytes:
                problems.append(
                    f"{NAMESPACE}:{size_key} is {new_size} but the live {name} volume is "
                    f"{old_size}, and a PersistentVolumeClaim cannot shrink; fix: "
                    f"{_command(size_key, old_size)} to keep the live volume, or {_move(name)}"
                )
            elif new_bytes > old_bytes:
                grown[name] = volume
        old_class = live.get("storageClass", "")
        if old_class != volume.storage_class:
            class_key = _class_key(settings, name)
            problems.append(
                f"{NAMESPACE}:{class_key} changes the StorageClass of the live {name} volume "
                f"from {old_class or '(cluster default)'!r} to "
                f"{volume.storage_class or '(cluster default)'!r}, which would replace the "
                f"volume and lose its data; fix: {_command(class_key, old_class)} to keep the "
                f"live volume, or {_move(name)}"
            )
    return grown, problems


@dataclass(frozen=True)
class VolumePlan:
    # Volumes whose size grows in this update.
    grow: dict[str, Volume] = field(default_factory=dict)
    # StatefulSets whose claim templates change in this update (a claim grows, or the volume
    # is turned off): the provider replaces them, orphaning their pods; their claims stay.
    reshaped: frozenset[str] = frozenset()
    # StatefulSet volumes whose claims carry a PersistentVolumeClaimPatch: those that grow now,
    # and those grown before (dropping a patch would be a change in every later preview).
    patched: dict[str, Volume] = field(default_factory=dict)
    # Every volume the chart renders in this update (what the update records); not a decision,
    # so two plans that decide the same are equal.
    current: dict[str, Volume] = field(default_factory=dict, compare=False)


def plan(settings: Settings, previous: PreviousState) -> VolumePlan:
    """What this update does to the volumes; ConfigError (before any resource) on a shrink or
    a StorageClass change of a live volume."""
    current = chart_volumes(settings)
    grown, problems = changes(settings, previous, current)
    if problems:
        raise ConfigError(problems, settings.stack)
    reshaped = {v.workload for v in grown.values() if v.workload}
    patched = {n: v for n, v in grown.items() if v.workload}
    if previous.volumes:
        base = fullname(chart_values.merged_values(settings, include_defaults=True))
        reshaped |= {
            f"{base}-{name}"
            for name in previous.volumes
            if name in TEMPLATE_COMPONENTS and name not in current
        }
        patched |= {
            name: v
            for name, v in current.items()
            if v.workload and previous.volumes.get(name, {}).get(PATCHED)
        }
    return VolumePlan(grown, frozenset(reshaped), patched, current)
