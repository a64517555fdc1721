"""Target `azure`: an AKS cluster in its own resource group and VNet (or an existing
subnet), with a system pool and an autoscaling user pool (both at the control plane's
version), a user-assigned managed identity, Azure CNI overlay with Cilium (which enforces
NetworkPolicy), the OIDC issuer with workload identity, Entra ID authentication with Azure
RBAC and no local accounts (a kubelogin kubeconfig), and a Premium SSD StorageClass.

Only the azure-native submodules in use are imported (the top package is slow to import).
"""

from __future__ import annotations

import base64

import pulumi
import yaml
from pulumi_azure_native import authorization, containerservice, managedidentity, network, resources
from pulumi_azure_native.provider import Provider as AzureProvider

from components.targets.base import (
    ClusterTarget,
    SnapshotClassSpec,
    StorageClassSpec,
    TargetArgs,
    exec_kubeconfig,
    k8s_provider,
    merged_tags,
    short_hash,
)

# Built-in role: Network Contributor (the cluster identity manages LBs in our subnet).
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
# Built-in role: Azure Kubernetes Service RBAC Cluster Admin (the Kubernetes API, all of it).
AKS_RBAC_CLUSTER_ADMIN = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
# The Entra application every AKS cluster's API server accepts tokens for.
AKS_AAD_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
SYSTEM_VM_SIZE = "Standard_D2s_v5"
# The class AKS marks as its default.
AKS_DEFAULT_CLASS = "default"
# One node added at a time during an upgrade; none drained before its replacement is ready.
UPGRADE_SETTINGS = {"max_surge": "1", "max_unavailable": "0"}


def builtin_role(subscription_id: pulumi.Output[str], role: str) -> pulumi.Output[str]:
    """The ID of an Azure built-in role definition (`role`: its GUID) in the subscription."""
    return subscription_id.apply(
        lambda sub: f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    )


def user_pool_name(settings) -> str:
    """The user pool's name, derived from what AKS cannot change in place (VM size, OS disk,
    Spot): changing one gives a new name, so Pulumi creates the new pool, then deletes (and
    drains) the old one, and the two never collide. Linux pool names: <= 12 of [a-z0-9]."""
    np = settings.node_pool
    return "u" + short_hash(np.machine_type, str(np.disk_size_gb), "spot" if np.spot else "")


def aks_kubeconfig(name: str, server: str, ca_data: str, tenant_id: str) -> str:
    """A kubeconfig that gets Entra ID tokens from kubelogin through the Azure CLI's login:
    `az login` on a laptop, `azure/login` with OIDC (workload identity federation) on CI."""
    return exec_kubeconfig(
        name,
        server,
        ca_data,
        {
            "command": "kubelogin",
            "args": [
                "get-token",
                "--login",
                "azurecli",
                "--server-id",
                AKS_AAD_SERVER_ID,
                "--tenant-id",
                tenant_id,
            ],
            "installHint": "Install kubelogin: az aks install-cli "
            "(or https://azure.github.io/kubelogin/install.html)",
        },
    )


def _cluster_of(kubeconfig_text: str) -> tuple[str, str]:
    """Server and CA of the (only) cluster in a kubeconfig AKS returned."""
    doc = yaml.safe_load(kubeconfig_text)
    cluster = doc["clusters"][0]["cluster"]
    return cluster["server"], cluster.get("certificate-authority-data", "")


class AksCluster(ClusterTarget):
    def __init__(self, name: str, args: TargetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pganalytics:targets:AksCluster", name, args, opts)
        s = args.settings
        cname = s.cluster_name
        tags = merged_tags(s)

        self.azure_provider = AzureProvider(
            "azure", location=s.region, opts=pulumi.ResourceOptions(parent=self)
        )
        child = pulumi.ResourceOptions(parent=self, provider=self.azure_provider)
        invoke = pulumi.InvokeOptions(parent=self, provider=self.azure_provider)
        client = authorization.get_client_config_output(opts=invoke)

        group = resources.ResourceGroup(
            "resource-group",
            resource_group_name=f"{cname}-rg",
            location=s.region,
            tags=tags,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=s.protect)),
        )

        if s.network.create:
            vnet = network.VirtualNetwork(
                "vnet",
                resource_group_name=group.name,
                virtual_network_name=f"{cname}-vnet",
                location=s.region,
                address_space={"address_prefixes": [s.network.cidr]},
                tags=tags,
                # Subnets are their own resources; the VNet must not try to remove them.
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(ignore_changes=["subnets"])
                ),
            )
            subnet = network.Subnet(
                "nodes-subnet",
                resource_group_name=group.name,
                virtual_network_name=vnet.name,
                subnet_name="nodes",
                address_prefix=s.network.cidr,
                opts=child,
            )
            subnet_id = subnet.id
        else:
            subnet_id = s.network.subnet_ids[0]

        identity = managedidentity.UserAssignedIdentity(
            "cluster-identity",
            resource_group_name=group.name,
            resource_name_=f"{cname}-identity",
            location=s.region,
            tags=tags,
            opts=child,
        )
        network_role = authorization.RoleAssignment(
            "cluster-network-contributor",
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=builtin_role(client.subscription_id, NETWORK_CONTRIBUTOR),
            scope=subnet_id,
            opts=child,
        )

        np = s.node_pool
        self.cluster = containerservice.ManagedCluster(
            "cluster",
            resource_group_name=group.name,
            resource_name_=cname,
            location=s.region,
            dns_prefix=cname,
            kubernetes_version=s.kubernetes_version or None,
            identity={
                "type": "UserAssigned",
                "user_assigned_identities": [identity.id],
            },
            agent_pool_profiles=[
                {
                    # System pool: cluster add-ons only (tainted), so apps land on the user pool.
                    "name": "system",
                    "mode": "System",
                    "vm_size": SYSTEM_VM_SIZE,
                    "count": 2,
                    "min_count": 2,
                    "max_count": 3,
                    "enable_auto_scaling": True,
                    "os_type": "Linux",
                    "os_sku": "AzureLinux",
                    "type": "VirtualMachineScaleSets",
                    "vnet_subnet_id": subnet_id,
                    # AKS taints Spot pools; with a Spot user pool the system pool must stay
                    # open to apps, or nothing without a Spot toleration could schedule.
                    "node_taints": [] if np.spot else ["CriticalAddonsOnly=true:NoSchedule"],
                    # The system pool moves with the control plane in the same update.
                    "orchestrator_version": s.kubernetes_version or None,
                    "upgrade_settings": UPGRADE_SETTINGS,
                }
            ],
            network_profile={
                "network_plugin": "azure",
                "network_plugin_mode": "overlay",
                "network_dataplane": "cilium",
                "network_policy": "cilium",
                "pod_cidr": s.network.pod_cidr,
                "service_cidr": s.network.service_cidr,
                "dns_service_ip": _dns_ip(s.network.service_cidr),
                "load_balancer_sku": "standard",
            },
            oidc_issuer_profile={"enabled": True},
            security_profile={"workload_identity": {"enabled": True}},
            storage_profile={"disk_csi_driver": {"enabled": True}},
            api_server_access_profile={
                "enable_private_cluster": not s.endpoint.public_access,
                "authorized_ip_ranges": [c for c in s.endpoint.public_cidrs if c != "0.0.0.0/0"]
                if s.endpoint.public_access
                else None,
            },
            auto_upgrade_profile={
                "upgrade_channel": "patch",
                "node_os_upgrade_channel": "NodeImage",
            },
            sku={"name": "Base", "tier": "Standard" if s.cluster.tier == "standard" else "Free"},
            enable_rbac=True,
            # Entra ID authentication, Azure RBAC authorization, and no static admin
            # certificate: every kubeconfig authenticates a person or a workload identity.
            aad_profile={
                "managed": True,
                "enable_azure_rbac": True,
                "tenant_id": client.tenant_id,
            },
            disable_local_accounts=True,
            tags=tags,
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[network_role],
                    protect=s.protect,
                    # The autoscaler owns the live count.
                    ignore_changes=["agentPoolProfiles[0].count"],
                ),
            ),
        )
        admin_roles = self._admins(s, client, child)

        self.user_pool = containerservice.AgentPool(
            "user-pool",
            resource_group_name=group.name,
            resource_name_=self.cluster.name,
            agent_pool_name=user_pool_name(s),
            mode="User",
            # After the control plane: the version comes back from the cluster.
            orchestrator_version=self.cluster.kubernetes_version,
            upgrade_settings=UPGRADE_SETTINGS,
            vm_size=np.machine_type,
            enable_auto_scaling=True,
            count=np.desired_size,
            min_count=np.min_size,
            max_count=np.max_size,
            os_type="Linux",
            os_sku="AzureLinux",
            os_disk_size_gb=np.disk_size_gb,
            type="VirtualMachineScaleSets",
            vnet_subnet_id=subnet_id,
            scale_set_priority="Spot" if np.spot else "Regular",
            scale_set_eviction_policy="Delete" if np.spot else None,
            spot_max_price=-1 if np.spot else None,
            node_labels={"pganalytics.io/pool": "default"},
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(ignore_changes=["count"])
            ),
        )

        self.cluster_name = self.cluster.name
        # The user credentials carry only the server and its CA (no secret) with Entra ID on.
        creds = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=group.name,
            resource_name=self.cluster.name,
            format="exec",
            opts=invoke,
        )
        endpoint = creds.kubeconfigs.apply(
            lambda k: _cluster_of(base64.b64decode(k[0].value).decode())
        )
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(self.cluster.name, endpoint, client.tenant_id).apply(
                lambda a: aks_kubeconfig(a[0], a[1][0], a[1][1], a[2])
            )
        )
        self.provider = k8s_provider(self, self.kubeconfig, cname, depends_on=admin_roles)

        params = {"skuName": s.storage.type, "kind": "managed"}
        if s.storage.type != "PremiumV2_LRS":
            params["cachingMode"] = "ReadOnly"
        self._create_storage_class(
            StorageClassSpec("disk.csi.azure.com", params), cloud_default=AKS_DEFAULT_CLASS
        )
        # No health-probe annotations: with externalTrafficPolicy Local (platform.py) the
        # Azure load balancer probes the Service's healthCheckNodePort, which kube-proxy
        # answers for nodes that run a controller pod, and ignores probe annotations.
        self.lb_annotations = {}
        self.workload_dependencies = [self.user_pool]
        # AKS ships the VolumeSnapshot CRDs and controller with its CSI drivers; incremental
        # snapshots store only the changed blocks, as AKS's own csi-azuredisk-vsc class does.
        self.snapshot_class = SnapshotClassSpec("disk.csi.azure.com", {"incremental": "true"})
        self._outputs()

    def _admins(self, s, client, child) -> list[pulumi.Resource]:
        """clusterAdmins.azure (Entra object ids: groups, users, service principals, managed
        identities) get AKS RBAC Cluster Admin on the cluster, one assignment each, the same
        whoever runs `up`. With none configured, the identity that first creates the
        assignment keeps it: a later `up` by another identity does not move it."""
        role = builtin_role(client.subscription_id, AKS_RBAC_CLUSTER_ADMIN)
        principals: list[tuple[str, pulumi.Input[str], list[str]]] = [
            (f"admin-{short_hash(oid.lower())}", oid, []) for oid in s.cluster_admins.azure
        ]
        if not principals:
            principals = [("deployer-admin", client.object_id, ["principalId"])]
        return [
            authorization.RoleAssignment(
                name,
                principal_id=principal,
                role_definition_id=role,
                scope=self.cluster.id,
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(ignore_changes=pinned)
                ),
            )
            for name, principal, pinned in principals
        ]


def _dns_ip(service_cidr: str) -> str:
    import ipaddress

    return str(ipaddress.ip_network(service_cidr)[10])
