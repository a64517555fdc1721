"""What the last update of this stack applied, for the decisions that need to know what is
live: which credential generation is deployed, and the size and StorageClass of each volume.

The record is two stack outputs the program writes itself (`credentialRotation`, `volumes`),
each resolved only once the resources that apply it are done (`record`). The next run reads
them back through the engine's built-in `pulumi:pulumi:readStackOutputs` function (what a
StackReference reads), before any resource is registered. A live read of the PVCs was the
alternative; it fails on a first deployment (no PVC yet) and on a cloud target whose cluster
does not exist yet, so a preview could not run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi

from components import volumes as chart_volumes
from components.chart_secrets import hide_secret_strings, secret_strings

if TYPE_CHECKING:
    from components.settings import Settings
    from components.volumes import VolumePlan

ROTATION_OUTPUT = "credentialRotation"
VOLUMES_OUTPUT = "volumes"
# What the cluster target deployed: node pool names, pinned versions (targets/*: `record`).
CLUSTER_OUTPUT = "clusterRecord"


@dataclass(frozen=True)
class PreviousState:
    # Secret key -> generation; keys absent were never rotated (generation 0).
    rotation: dict[str, int] = field(default_factory=dict)
    # Volume name -> {"size": "20Gi", "storageClass": "..."}; None when the last update
    # predates the record (sizes unknown).
    volumes: dict[str, dict[str, str]] | None = None
    # The target of the last update ("" on a new stack) and what its cluster target recorded
    # ({} when the last update predates the record).
    target: str = ""
    cluster: dict[str, Any] = field(default_factory=dict)


def from_outputs(outputs: dict[str, Any]) -> PreviousState:
    rotation = outputs.get(ROTATION_OUTPUT) or {}
    recorded = outputs.get(VOLUMES_OUTPUT)
    cluster = outputs.get(CLUSTER_OUTPUT)
    return PreviousState(
        rotation={str(k): int(v) for k, v in rotation.items()},
        volumes=_volumes(recorded) if isinstance(recorded, dict) else None,
        target=str(outputs.get("target") or ""),
        cluster=dict(cluster) if isinstance(cluster, dict) else {},
    )


def _volumes(recorded: dict) -> dict[str, dict[str, str]]:
    return {str(k): {f: str(x) for f, x in dict(v).items()} for k, v in recorded.items()}


CHECKPOINT_READS = 5


def read_previous_state() -> PreviousState:
    """The record of this stack's last successful update (empty on a new stack)."""
    name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    for attempt in range(1, CHECKPOINT_READS + 1):
        try:
            result = pulumi.runtime.invoke("pulumi:pulumi:readStackOutputs", {"name": name})
            break
        except Exception as exc:
            # A file backend opened without ?metadata=skip (scripts/pulumi.sh sets it) rewrites
            # the checkpoint's sidecar .attrs file in place during an update, and a read can
            # catch it empty ("failed to load checkpoint: EOF"); anything else is a real failure.
            if "failed to load checkpoint" not in str(exc) or attempt == CHECKPOINT_READS:
                raise
            time.sleep(0.5)
    value = result.value or {}
    return from_outputs(dict(value.get("outputs") or {}))


def once_applied(resources: list[pulumi.CustomResource], value: Any) -> Any:
    """`value`, resolved only after these resources were created or updated: when one fails the
    stack keeps the previous record, and the next run plans the same change again."""
    if not resources:
        return value
    return pulumi.Output.all(*[r.id for r in resources]).apply(lambda _: value)


def record(
    settings: Settings,
    credentials_secret: pulumi.CustomResource,
    claim_patches: list[pulumi.CustomResource],
    volume_plan: VolumePlan,
) -> None:
    """Exports what this update deploys, for the next run."""
    rotation = {k: n for k, n in sorted(settings.credentials.rotation.items()) if n}
    pulumi.export(ROTATION_OUTPUT, once_applied([credentials_secret], rotation))
    sizes = chart_volumes.record(volume_plan)
    # A size set with --secret (unusual, but allowed) keeps the record secret.
    _, holds_secret = hide_secret_strings(
        sizes, secret_strings(settings.chart.values, settings.chart_secret_paths)
    )
    value = once_applied(claim_patches, sizes)
    pulumi.export(VOLUMES_OUTPUT, pulumi.Output.secret(value) if holds_secret else value)


def record_cluster(cluster_record: dict[str, Any]) -> None:
    """Exports what the cluster target deployed (its `record`), for the next run."""
    pulumi.export(CLUSTER_OUTPUT, cluster_record)
