"""Target `existing`: adopt a cluster someone else runs (kind, minikube, k3d, Docker
Desktop, or any cluster reachable through a kubeconfig). Creates no cloud resource.

The stack is bound to one cluster: the Kubernetes provider's identity is the kubeconfig
context and its API server. Pointing the stack at another cluster (another context, or the
same context name on another server) changes that identity, which Pulumi shows as a
replacement of the provider and of every object on it; on a protected stack the preview
refuses it. A context the kubeconfig does not have is a configuration error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pulumi
import yaml

from components.settings import ConfigError, Settings
from components.targets.base import ClusterTarget, TargetArgs, k8s_provider

KUBECONFIG_FIX = 'pulumi config set --secret pganalytics:kubeconfig "$(cat ~/.kube/config)"'


@dataclass(frozen=True)
class ClusterBinding:
    context: str
    server: str

    @property
    def identity(self) -> str:
        return f"{self.context}@{self.server}"


def ambient_kubeconfig_paths() -> list[Path]:
    """What kubectl reads without flags: $KUBECONFIG (a path list), else ~/.kube/config."""
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return [Path(p) for p in listed] if listed else [Path.home() / ".kube" / "config"]


def _merged(documents: list[dict]) -> dict:
    """kubectl's merge of several kubeconfig files: the first file to set a value wins."""
    merged: dict = {"clusters": [], "contexts": [], "current-context": ""}
    for doc in documents:
        for section in ("clusters", "contexts"):
            known = {entry.get("name") for entry in merged[section]}
            merged[section] += [
                e
                for e in doc.get(section) or []
                if isinstance(e, dict) and e.get("name") not in known
            ]
        merged["current-context"] = merged["current-context"] or doc.get("current-context") or ""
    return merged


def bind(settings: Settings) -> ClusterBinding:
    """The cluster the stack's kubeconfig and context select, or ConfigError."""
    stack = settings.stack
    if settings.kubeconfig:
        docs = [yaml.safe_load(settings.kubeconfig) or {}]
        source = "pganalytics:kubeconfig"
    else:
        paths = [p for p in ambient_kubeconfig_paths() if p.is_file()]
        if not paths:
            raise ConfigError(
                [
                    "pganalytics:kubeconfig is empty and there is no ambient kubeconfig "
                    f"({os.pathsep.join(str(p) for p in ambient_kubeconfig_paths())}); fix: "
                    f"{KUBECONFIG_FIX}, or point KUBECONFIG at your cluster's kubeconfig"
                ],
                stack,
            )
        docs = [yaml.safe_load(p.read_text()) or {} for p in paths]
        source = "the ambient kubeconfig (KUBECONFIG or ~/.kube/config)"
    merged = _merged([d for d in docs if isinstance(d, dict)])
    contexts = {c["name"]: c.get("context") or {} for c in merged["contexts"]}
    clusters = {c["name"]: c.get("cluster") or {} for c in merged["clusters"]}
    wanted = settings.kube_context or merged["current-context"]
    if not wanted or wanted not in contexts:
        have = ", ".join(sorted(contexts)) or "none"
        key = "kubeContext" if settings.kube_context else "kubeconfig"
        what = (
            f"names context {wanted!r}, which {source} does not have"
            if wanted
            else f"selects no context ({source} has no current-context)"
        )
        current = merged["current-context"]
        pick = current if current in contexts else min(contexts, default="")
        fix = f"pulumi config set pganalytics:kubeContext {pick}" if pick else KUBECONFIG_FIX
        raise ConfigError([f"pganalytics:{key} {what} (contexts: {have}); fix: {fix}"], stack)
    cluster = clusters.get(contexts[wanted].get("cluster", ""), {})
    server = cluster.get("server", "")
    if not server:
        raise ConfigError(
            [
                f"pganalytics:kubeconfig context {wanted!r} refers to a cluster without a "
                f"server in {source}; fix: {KUBECONFIG_FIX} with a complete kubeconfig"
            ],
            stack,
        )
    return ClusterBinding(context=wanted, server=server)


class ExistingCluster(ClusterTarget):
    def __init__(self, name: str, args: TargetArgs, opts: pulumi.ResourceOptions | None = None):
        s = args.settings
        # Before any resource: a kubeconfig that selects no cluster is a config error.
        self.binding = bind(s)
        super().__init__("pganalytics:targets:ExistingCluster", name, args, opts)

        self.cluster_name = pulumi.Output.from_input(self.binding.context)

        # Without a configured kubeconfig the provider loads the ambient one itself (KUBECONFIG
        # or ~/.kube/config). "" rather than None: the SDK would otherwise copy $KUBECONFIG,
        # a path on this machine, into the state.
        kubeconfig = pulumi.Output.secret(s.kubeconfig) if s.kubeconfig else ""
        self.kubeconfig = kubeconfig if s.kubeconfig else pulumi.Output.secret("")
        # The context is always explicit, so the provider talks to the cluster it is bound to
        # even when the kubeconfig's current context moves.
        self.provider = k8s_provider(
            self, kubeconfig, self.binding.identity, context=self.binding.context
        )

        # storage.className "" keeps the cluster's default class (the chart leaves
        # storageClassName unset); a name selects a class that already exists there.
        self.storage_class_name = s.storage.class_name
        self._outputs()
