"""Versions the EKS target pins in state: the nodes' AMI release and each add-on's version.

Resolved once (a first deploy, or a `kubernetesVersion` bump: SSM's recommended release, the
newest add-on build for the cluster's version), recorded in the `clusterRecord` stack output,
and read back by the next update, so an `up` that changes nothing else rolls no node and
touches no add-on when AWS publishes a new build. An explicit bump (`cluster.nodeImageVersion`,
`cluster.addonVersions`) moves one; the preview says when a newer one exists.
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi

from components.previous import PreviousState


class Pins:
    """What the last update recorded (`clusterRecord.versions`), for one Kubernetes minor."""

    def __init__(self, previous: PreviousState):
        recorded = previous.cluster.get("versions") if previous.target == "aws" else None
        recorded = recorded if isinstance(recorded, dict) else {}
        self.minor = str(recorded.get("kubernetes") or "")
        self.node_image = str(recorded.get("nodeImage") or "")
        self.addons = {str(k): str(v) for k, v in (recorded.get("addons") or {}).items()}

    def pinned(
        self,
        minor: pulumi.Output[str],
        recorded: str,
        override: str,
        newest: Callable[[str], pulumi.Output[str]],
        bump: Callable[[str], str],
    ) -> pulumi.Output[str]:
        """The version to run: `override` if set; else the recorded one while the cluster
        stays on the minor it was recorded for; else the newest for the cluster's minor.
        `bump(newest)` is the command that moves to a newer one, logged when there is one."""

        def choose(version: str) -> pulumi.Input[str]:
            if override:
                return override
            if not (recorded and self.minor == version):
                return newest(version)

            def keep(latest: str) -> str:
                if latest and latest != recorded:
                    pulumi.log.info(f"pinned at {recorded}; {latest} is newer: {bump(latest)}")
                return recorded

            return newest(version).apply(keep)

        return minor.apply(choose)
