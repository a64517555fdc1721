"""Target `existing`: adopt a cluster someone else runs (kind, minikube, k3d, Docker
Desktop, or any cluster reachable through a kubeconfig). Creates no cloud resource."""

from __future__ import annotations

import pulumi
import yaml

from components.targets.base import ClusterTarget, TargetArgs, k8s_provider


class ExistingCluster(ClusterTarget):
    def __init__(self, name: str, args: TargetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pganalytics:targets:ExistingCluster", name, args, opts)
        s = args.settings

        context = s.kube_context
        if s.kubeconfig and not context:
            # Name the cluster after the kubeconfig's current context, for the outputs.
            context_name = (yaml.safe_load(s.kubeconfig) or {}).get("current-context", "")
        else:
            context_name = context
        self.cluster_name = pulumi.Output.from_input(context_name or s.cluster_name)

        # Without a configured kubeconfig the provider reads the ambient one (KUBECONFIG or
        # ~/.kube/config), so nothing machine-specific lands in the state.
        kubeconfig = pulumi.Output.secret(s.kubeconfig) if s.kubeconfig else None
        self.kubeconfig = kubeconfig if kubeconfig is not None else pulumi.Output.secret("")
        self.provider = k8s_provider(self, kubeconfig, s.cluster_name, context=context)

        # storage.className "" keeps the cluster's default class (the chart leaves
        # storageClassName unset); a name selects a class that already exists there.
        self.storage_class_name = s.storage.class_name
        self._outputs()
