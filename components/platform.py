"""What every cluster gets, whatever the cloud: the application namespace with Pod Security
Admission labels, the Traefik ingress controller, cert-manager with an ACME
ClusterIssuer when TLS is on, and the CloudNativePG operator with its Barman Cloud plugin when
the database is CloudNativePG's (the plugin's TLS comes from cert-manager).

Third-party charts that rely on Helm hooks (cert-manager's CRDs and webhook checks, Traefik's
CRDs) go through `helm.v3.Release`, which runs hooks; versions are pinned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.settings import CERT_MANAGER_NAMESPACE, Settings

TRAEFIK_CHART = ("traefik", "41.3.0", "https://traefik.github.io/charts")
# Container ports of the Traefik chart's `web` and `websecure` entrypoints (its defaults).
TRAEFIK_ENTRYPOINT_PORTS = (8000, 8443)
# cert-manager's webhook listens here (the chart's `webhook.securePort` default).
CERT_MANAGER_WEBHOOK_PORT = 10250
# Egress to the internet and the API server leaves out the link-local range, which holds the
# cloud metadata address 169.254.169.254 (the node's credentials).
LINK_LOCAL = "169.254.0.0/16"
CERT_MANAGER_CHART = ("cert-manager", "v1.19.1", "https://charts.jetstack.io")
# CloudNativePG 1.30.0 and the Barman Cloud plugin v0.13.0 (its sidecar runs barman 3.19.1);
# the plugin must live in the operator's namespace.
CNPG_REPO = "https://cloudnative-pg.github.io/charts"
CNPG_CHART = ("cloudnative-pg", "0.29.0", CNPG_REPO)
BARMAN_PLUGIN_CHART = ("plugin-barman-cloud", "0.7.0", CNPG_REPO)
# Ports of the operator's pods: admission webhook, the plugin's gRPC service; and what the
# operator reaches in the release namespace: the instance manager's status, PostgreSQL.
CNPG_WEBHOOK_PORT = 9443
BARMAN_PLUGIN_PORT = 9090
CNPG_INSTANCE_PORTS = (8000, 5432)
ACME_SERVERS = {
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "production": "https://acme-v02.api.letsencrypt.org/directory",
}


def psa_labels(level: str) -> dict[str, str]:
    """Pod Security Admission: enforce `level`, and audit/warn at `restricted`."""
    return {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }


def lb_address(status) -> str:
    """Hostname (AWS) or IP (GCP, Azure) of a LoadBalancer Service; "" while pending."""
    lb = getattr(status, "load_balancer", None) if status else None
    ingress = (getattr(lb, "ingress", None) or []) if lb else []
    if not ingress:
        return ""
    return getattr(ingress[0], "hostname", None) or getattr(ingress[0], "ip", None) or ""


def traefik_replicas(settings: Settings) -> int:
    """Traefik pods: two on a protected stack (a node drain keeps one serving), else one. The
    capacity check counts the same number (components/capacity/)."""
    return 2 if settings.protect else 1


def pinned_release(
    chart: tuple[str, str, str],
    namespace: k8s.core.v1.Namespace,
    values: dict,
    opts: pulumi.ResourceOptions,
    **options,
) -> k8s.helm.v3.Release:
    """A third-party chart at its pinned (name, version, repository), released under its own
    name; a failed install is cleaned up rather than left half-made."""
    name, version, repo = chart
    return k8s.helm.v3.Release(
        name,
        name=name,
        chart=name,
        version=version,
        repository_opts={"repo": repo},
        namespace=namespace.metadata.name,
        values=values,
        cleanup_on_fail=True,
        timeout=600,
        opts=opts,
        **options,
    )


def cnpg_network_policy(app_namespace: str) -> dict:
    """Flows of the operator's namespace: the API server -> the admission webhook (any source:
    the control plane's addresses differ per cloud); operator <-> plugin; operator and plugin ->
    the Kubernetes API, and -> the instances of the release namespace (status, PostgreSQL).
    DNS through kube-dns."""
    app = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": app_namespace}}}
    same = {"podSelector": {}}
    tcp = lambda *ports: [{"protocol": "TCP", "port": p} for p in ports]  # noqa: E731
    return {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {"ports": tcp(CNPG_WEBHOOK_PORT)},
            {"from": [same], "ports": tcp(BARMAN_PLUGIN_PORT)},
        ],
        "egress": [
            {"ports": tcp(443, 6443)},
            {"to": [same], "ports": tcp(BARMAN_PLUGIN_PORT)},
            {"to": [app], "ports": tcp(*CNPG_INSTANCE_PORTS)},
            {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                        },
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            },
        ],
    }


@dataclass
class PlatformArgs:
    settings: Settings
    provider: k8s.Provider
    lb_annotations: dict[str, str]
    # Resources a pod needs before it can schedule (node pools, CSI driver).
    workload_dependencies: list[pulumi.Resource] = field(default_factory=list)


class Platform(pulumi.ComponentResource):
    """Outputs: `namespace` (Output[str]), `ingress_address` (Output[str], "" when none),
    `issuer` (the ClusterIssuer or None), `controller` (the Traefik release or None)."""

    namespace: pulumi.Output[str]
    ingress_address: pulumi.Output[str]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pganalytics:platform:Platform", name, None, opts)
        s = args.settings
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        after_nodes = pulumi.ResourceOptions.merge(
            k8s_opts, pulumi.ResourceOptions(depends_on=args.workload_dependencies)
        )

        # The app namespace: deleting it would delete the database volume claims, so it is
        # protected with the other stateful resources.
        self.app_namespace = k8s.core.v1.Namespace(
            "app-namespace",
            metadata={
                "name": s.chart.namespace,
                "labels": {**psa_labels("restricted"), "app.kubernetes.io/part-of": "pganalytics"},
            },
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(protect=s.protect)),
        )
        self.namespace = self.app_namespace.metadata.name

        self.controller = None
        self.ingress_address = pulumi.Output.from_input("")
        if s.ingress.controller == "traefik":
            self._traefik(s, args, k8s_opts, after_nodes)

        self.cert_manager = None
        self.issuer = None
        if s.ingress.tls:
            self._cert_manager(s, k8s_opts, after_nodes)

        # What the CloudNativePG objects of the chart wait for: the operator's CRDs and webhook,
        # the plugin; empty when the mode is another or the cluster has them (operator.install).
        self.database_operator: list[pulumi.Resource] = []
        if s.database.cloudnativepg and s.database.operator.install:
            self._cloudnativepg(s, k8s_opts, after_nodes)

        self.register_outputs({"namespace": self.namespace, "ingressAddress": self.ingress_address})

    def _traefik(self, s: Settings, args: PlatformArgs, k8s_opts, after_nodes) -> None:
        ns = k8s.core.v1.Namespace(
            "traefik-namespace",
            # The controller's pods satisfy `baseline`; audit/warn report against restricted.
            metadata={"name": s.ingress.controller_namespace, "labels": psa_labels("baseline")},
            opts=k8s_opts,
        )
        service: dict = {"type": s.ingress.service_type, "annotations": args.lb_annotations}
        if s.is_cloud:
            # Keep client source IPs and only send traffic to nodes that run a controller:
            # every cloud's load balancer then health-checks the Service's
            # healthCheckNodePort (served by kube-proxy), not the controller's own ports.
            service["spec"] = {"externalTrafficPolicy": "Local"}
        replicas = traefik_replicas(s)
        values = {
            "deployment": {"replicas": replicas},
            "podDisruptionBudget": {"enabled": replicas > 1, "maxUnavailable": 1},
            "ingressClass": {
                "enabled": True,
                "isDefaultClass": False,
                "name": s.ingress.class_name,
            },
            # Report the LoadBalancer address in each Ingress's status.
            "providers": {"kubernetesIngress": {"publishedService": {"enabled": True}}},
            "service": service,
        }
        self._traefik_network_policies(ns, s, k8s_opts)
        self.controller = pinned_release(
            TRAEFIK_CHART,
            ns,
            values,
            after_nodes,
            # On a laptop cluster (kind) a LoadBalancer may never get an address: do not
            # hold the update hostage to it there.
            skip_await=not s.is_cloud,
            atomic=s.is_cloud,
        )
        svc = k8s.core.v1.Service.get(
            "traefik-service",
            pulumi.Output.concat(
                self.controller.status.namespace, "/", self.controller.status.name
            ),
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=[self.controller]
            ),
        )

        self.ingress_address = svc.status.apply(lb_address)

    def _install_cert_manager(self, s: Settings, k8s_opts, after_nodes) -> list[pulumi.Resource]:
        """cert-manager (once), unless ingress.installCertManager says the cluster has it."""
        if self.cert_manager is None and s.ingress.install_cert_manager:
            ns = k8s.core.v1.Namespace(
                "cert-manager-namespace",
                metadata={"name": CERT_MANAGER_NAMESPACE, "labels": psa_labels("restricted")},
                opts=k8s_opts,
            )
            self._cert_manager_network_policies(ns, k8s_opts)
            self.cert_manager = pinned_release(
                CERT_MANAGER_CHART,
                ns,
                {"crds": {"enabled": True, "keep": True}},
                after_nodes,
                atomic=True,
            )
        return [self.cert_manager] if self.cert_manager is not None else []

    def _cloudnativepg(self, s: Settings, k8s_opts, after_nodes) -> None:
        """The operator (its CRDs kept when the release goes: deleting them would delete every
        Cluster) and the Barman Cloud plugin, in their own namespace, Pod Security restricted,
        with a NetworkPolicy."""
        ns = k8s.core.v1.Namespace(
            "cnpg-namespace",
            metadata={"name": s.database.operator.namespace, "labels": psa_labels("restricted")},
            opts=k8s_opts,
        )
        operator = pinned_release(
            CNPG_CHART,
            ns,
            {"crds": {"create": True}, "config": {"clusterWide": True}},
            after_nodes,
            atomic=True,
        )
        certificates = self._install_cert_manager(s, k8s_opts, after_nodes)
        plugin = pinned_release(
            BARMAN_PLUGIN_CHART,
            ns,
            {"crds": {"create": True}},
            pulumi.ResourceOptions.merge(
                after_nodes, pulumi.ResourceOptions(depends_on=[operator, *certificates])
            ),
            atomic=True,
        )
        k8s.networking.v1.NetworkPolicy(
            "cnpg-network-policy",
            metadata={"name": "cloudnative-pg", "namespace": ns.metadata.name},
            spec=cnpg_network_policy(s.chart.namespace),
            opts=k8s_opts,
        )
        self.database_operator = [operator, plugin]

    def _cert_manager(self, s: Settings, k8s_opts, after_nodes) -> None:
        depends = self._install_cert_manager(s, k8s_opts, after_nodes)
        issuer_name = s.ingress.cluster_issuer
        self.issuer = k8s.apiextensions.CustomResource(
            "cluster-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata={"name": issuer_name},
            spec={
                "acme": {
                    "email": s.ingress.acme_email,
                    "server": ACME_SERVERS[s.ingress.acme_issuer],
                    "privateKeySecretRef": {"name": f"{issuer_name}-account-key"},
                    "solvers": [
                        {"http01": {"ingress": {"ingressClassName": s.ingress.class_name}}}
                    ],
                }
            },
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=depends)),
        )

    # --- NetworkPolicies of the controllers' namespaces ------------------------------------
    # Each namespace gets a default deny and then only the flows its controller needs. A
    # controller's API server connection goes to addresses that differ per cluster (private
    # endpoints included), so it is allowed to any address on the API server ports except the
    # link-local range. Kubelet probes come from the node, which NetworkPolicy does not govern.

    def _network_policy(self, controller: str, name: str, ns, spec: dict, k8s_opts) -> None:
        """NetworkPolicy `name` in the controller's namespace `ns` (Pulumi: controller-name)."""
        k8s.networking.v1.NetworkPolicy(
            f"{controller}-{name}",
            metadata={"name": name, "namespace": ns.metadata.name},
            spec=spec,
            opts=k8s_opts,
        )

    def _traefik_network_policies(self, ns, s: Settings, k8s_opts) -> None:
        """Traefik: clients (through the load balancer) on its entrypoints only; out to DNS,
        the API server, and the pods it routes to in the app namespace (and cert-manager's
        HTTP-01 solvers, which run there)."""
        self._network_policy("traefik", "default-deny", ns, _default_deny(), k8s_opts)
        self._network_policy(
            "traefik",
            "allow-controller",
            ns,
            {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"ports": _tcp(*TRAEFIK_ENTRYPOINT_PORTS)}],
                "egress": [
                    _dns_egress(),
                    _api_server_egress(),
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {
                                        "kubernetes.io/metadata.name": s.chart.namespace
                                    }
                                }
                            }
                        ]
                    },
                ],
            },
            k8s_opts,
        )

    def _cert_manager_network_policies(self, ns, k8s_opts) -> None:
        """cert-manager: the API server calls its webhook; it talks to the API server, the ACME
        server (HTTPS) and, for the HTTP-01 self check, the challenge URL (HTTP), both public."""
        self._network_policy("cert-manager", "default-deny", ns, _default_deny(), k8s_opts)
        self._network_policy(
            "cert-manager",
            "allow-controller",
            ns,
            {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"ports": _tcp(CERT_MANAGER_WEBHOOK_PORT)}],
                "egress": [
                    _dns_egress(),
                    _api_server_egress(),
                    {"to": [_internet()], "ports": _tcp(80, 443)},
                ],
            },
            k8s_opts,
        )


def _tcp(*ports: int) -> list[dict]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def _internet() -> dict:
    return {"ipBlock": {"cidr": "0.0.0.0/0", "except": [LINK_LOCAL]}}


def _default_deny() -> dict:
    return {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def _dns_egress() -> dict:
    dns = {"k8s-app": "kube-dns"}
    return {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": dns},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


def _api_server_egress() -> dict:
    return {"to": [_internet()], "ports": _tcp(443, 6443)}
