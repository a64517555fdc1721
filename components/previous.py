"""What the last successful update of this stack recorded, for the decisions that need to know
what is live: which credential generation is deployed, and the size and StorageClass of each
volume.

The record is two plain stack outputs the program writes itself (`credentialRotation`,
`volumes`), read back at the start of the next run through the engine's built-in
`pulumi:pulumi:readStackOutputs` function (the one StackReference uses), before any resource is
registered. A live read of the PVCs was the alternative; it fails on a first deployment (no
PVC yet) and on a cloud target whose cluster does not exist yet, so a preview could not run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

ROTATION_OUTPUT = "credentialRotation"
VOLUMES_OUTPUT = "volumes"


@dataclass(frozen=True)
class PreviousState:
    # Secret key -> generation; keys absent were never rotated (generation 0).
    rotation: dict[str, int] = field(default_factory=dict)
    # Volume name -> {"size": "20Gi", "storageClass": "..."}; None when the last update
    # predates the record (sizes unknown).
    volumes: dict[str, dict[str, str]] | None = None


def from_outputs(outputs: dict[str, Any]) -> PreviousState:
    rotation = outputs.get(ROTATION_OUTPUT) or {}
    recorded = outputs.get(VOLUMES_OUTPUT)
    return PreviousState(
        rotation={str(k): int(v) for k, v in rotation.items()},
        volumes=_volumes(recorded) if isinstance(recorded, dict) else None,
    )


def _volumes(recorded: dict) -> dict[str, dict[str, str]]:
    return {str(k): {f: str(x) for f, x in dict(v).items()} for k, v in recorded.items()}


def read_previous_state() -> PreviousState:
    """The record of this stack's last successful update (empty on a new stack)."""
    name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    result = pulumi.runtime.invoke("pulumi:pulumi:readStackOutputs", {"name": name})
    value = result.value or {}
    return from_outputs(dict(value.get("outputs") or {}))
