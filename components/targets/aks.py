"""Target `azure`: an AKS cluster in its own resource group and VNet (or an existing
subnet), with a system pool and an autoscaling user pool, a user-assigned managed identity,
Azure CNI overlay, the OIDC issuer with workload identity, and a Premium SSD StorageClass.

Only the azure-native submodules in use are imported (the top package is slow to import).
"""

from __future__ import annotations

import base64

import pulumi
from pulumi_azure_native import authorization, containerservice, managedidentity, network, resources
from pulumi_azure_native.provider import Provider as AzureProvider

from components.targets.base import (
    ClusterTarget,
    StorageClassSpec,
    TargetArgs,
    k8s_provider,
    merged_tags,
)

# Built-in role: Network Contributor (the cluster identity manages LBs in our subnet).
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
SYSTEM_VM_SIZE = "Standard_D2s_v5"


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
            role_definition_id=client.subscription_id.apply(
                lambda sub: (
                    f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
                    f"roleDefinitions/{NETWORK_CONTRIBUTOR}"
                )
            ),
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
        self.user_pool = containerservice.AgentPool(
            "user-pool",
            resource_group_name=group.name,
            resource_name_=self.cluster.name,
            agent_pool_name="user",
            mode="User",
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
        creds = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=group.name, resource_name=self.cluster.name, opts=invoke
        )
        self.kubeconfig = pulumi.Output.secret(
            creds.kubeconfigs.apply(lambda k: base64.b64decode(k[0].value).decode())
        )
        self.provider = k8s_provider(self, self.kubeconfig, cname)

        params = {"skuName": s.storage.type, "kind": "managed"}
        if s.storage.type != "PremiumV2_LRS":
            params["cachingMode"] = "ReadOnly"
        self._create_storage_class(StorageClassSpec("disk.csi.azure.com", params))
        # Azure probes the LB backends over HTTP on /ping, which Traefik serves on `web`.
        self.lb_annotations = {
            "service.beta.kubernetes.io/azure-load-balancer-health-probe-request-path": "/ping",
            "service.beta.kubernetes.io/port_80_health-probe_protocol": "http",
            "service.beta.kubernetes.io/port_80_health-probe_request-path": "/ping",
            "service.beta.kubernetes.io/port_443_health-probe_protocol": "http",
            "service.beta.kubernetes.io/port_443_health-probe_request-path": "/ping",
        }
        self.workload_dependencies = [self.user_pool]
        self._outputs()


def _dns_ip(service_cidr: str) -> str:
    import ipaddress

    return str(ipaddress.ip_network(service_cidr)[10])
