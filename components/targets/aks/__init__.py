"""Target `azure`: an AKS cluster in its own resource group and VNet (or an existing subnet),
with a system pool and an autoscaling user pool over availability zones (both at the control
plane's version, sized from the live pools), a user-assigned managed identity, Azure CNI
overlay with Cilium (which enforces NetworkPolicy), the OIDC issuer with workload identity,
Entra ID authentication with Azure RBAC and no local accounts (a kubelogin kubeconfig), Secrets
encrypted with a Key Vault key (KMS), control-plane logs in a Log Analytics workspace, the
Azure Policy and Key Vault CSI add-ons, maintenance windows for the automatic upgrades, and a
Premium SSD StorageClass. Role assignments are waited for until they take effect
(rbac.py).

Only the azure-native submodules in use are imported (the top package is slow to import).
Layout: pools.py (zones, pool names, maintenance windows), access.py (roles, kubeconfig),
rbac.py (waiting for role assignments to take effect).
"""

from __future__ import annotations

import base64

import pulumi
from pulumi_azure_native import (
    authorization,
    containerservice,
    keyvault,
    managedidentity,
    monitor,
    network,
    operationalinsights,
    resources,
)
from pulumi_azure_native.provider import Provider as AzureProvider

from components.previous import once_applied
from components.targets.aks.access import (
    AKS_RBAC_CLUSTER_ADMIN,
    AZURE_READ_HINT,
    CLUSTER_ADMIN_DATA_ACTION,
    KEY_VAULT_CRYPTO_USER,
    NETWORK_CONTRIBUTOR,
    RBAC_HINT,
    _cluster_of,
    aks_kubeconfig,
    builtin_role,
)
from components.targets.aks.pools import (
    AKS_DEFAULT_CLASS,
    CONTROL_PLANE_LOGS,
    SYSTEM_BOUNDS,
    SYSTEM_POOL,
    SYSTEM_VM_SIZE,
    UPGRADE_SETTINGS,
    _dns_ip,
    legacy_user_pool_name,
    maintenance_window,
    user_pool_name,
    zones,
)
from components.targets.aks.rbac import assignment_listed, caller_can, once_effective
from components.targets.base import (
    ClusterTarget,
    SnapshotClassSpec,
    StorageClassSpec,
    TargetArgs,
    cloud_lookup,
    k8s_provider,
    merged_tags,
    scaled_size,
    short_hash,
)

__all__ = ["AksCluster", "builtin_role", "user_pool_name"]


class AksCluster(ClusterTarget):
    def __init__(self, name: str, args: TargetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pganalytics:targets:AksCluster", name, args, opts)
        s = args.settings
        self.tags = merged_tags(s)
        self.azure_provider = AzureProvider(
            "azure", location=s.region, opts=pulumi.ResourceOptions(parent=self)
        )
        self.child = pulumi.ResourceOptions(parent=self, provider=self.azure_provider)
        self.invoke = pulumi.InvokeOptions(parent=self, provider=self.azure_provider)
        self.client = authorization.get_client_config_output(opts=self.invoke)
        # The deployer's own ARM token, to poll role assignments until they take effect.
        self.token = pulumi.Output.secret(
            authorization.get_client_token_output(opts=self.invoke).token
        )
        self.live = self._live_pools()
        self.group = resources.ResourceGroup(
            "resource-group",
            resource_group_name=f"{s.cluster_name}-rg",
            location=s.region,
            tags=self.tags,
            opts=pulumi.ResourceOptions.merge(
                self.child, pulumi.ResourceOptions(protect=s.protect)
            ),
        )
        self._network()
        self._identity()
        self._secrets_key()
        self._logs()
        self._control_plane()
        admin_roles = self._deployer_access()
        self._nodes()
        self._maintenance()
        self._kubernetes_access(admin_roles)
        self._storage()
        self.record = once_applied(
            [self.cluster, self.user_pool],
            {"nodePools": {SYSTEM_POOL: SYSTEM_POOL, "user-pool": user_pool_name(s)}},
        )
        self._outputs()

    # --- what is live -------------------------------------------------------------------

    def _live_pools(self) -> dict[str, int]:
        """The live node count of each existing pool (what the autoscaler set), read at
        preview and at `up`: a pool update sends its whole definition, count included, and
        AKS refuses a count outside [minCount, maxCount]."""
        s, p = self.settings, self.previous
        if p.target != "azure":
            return {}
        recorded = p.cluster.get("nodePools")
        # The last update predates the record: look for the pools 3d03071 named, and carry
        # over the count of those that exist (an older stack's pool may be named otherwise).
        strict = isinstance(recorded, dict)
        names = (
            {k: str(v) for k, v in recorded.items()}
            if strict
            else {SYSTEM_POOL: SYSTEM_POOL, "user-pool": legacy_user_pool_name(s)}
        )
        live = {}
        for key, pool in names.items():

            def read(pool=pool):
                return containerservice.get_agent_pool(
                    agent_pool_name=pool,
                    resource_group_name=f"{s.cluster_name}-rg",
                    resource_name=s.cluster_name,
                    opts=self.invoke,
                )

            if strict:
                found = cloud_lookup(f"AKS node pool {pool}", read, AZURE_READ_HINT)
            else:
                try:
                    found = read()
                except Exception:  # the engine raises plain Exceptions for failed invokes
                    continue
            if found.count is not None:
                live[key] = found.count
        return live

    # --- network and identity -----------------------------------------------------------

    def _network(self) -> None:
        s, child = self.settings, self.child
        if not s.network.create:
            self.subnet_id = s.network.subnet_ids[0]
            return
        vnet = network.VirtualNetwork(
            "vnet",
            resource_group_name=self.group.name,
            virtual_network_name=f"{s.cluster_name}-vnet",
            location=s.region,
            address_space={"address_prefixes": [s.network.cidr]},
            tags=self.tags,
            # Subnets are their own resources; the VNet must not try to remove them.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(ignore_changes=["subnets"])
            ),
        )
        subnet = network.Subnet(
            "nodes-subnet",
            resource_group_name=self.group.name,
            virtual_network_name=vnet.name,
            subnet_name="nodes",
            address_prefix=s.network.cidr,
            opts=child,
        )
        self.subnet_id = subnet.id

    def _identity(self) -> None:
        s = self.settings
        self.identity = managedidentity.UserAssignedIdentity(
            "cluster-identity",
            resource_group_name=self.group.name,
            resource_name_=f"{s.cluster_name}-identity",
            location=s.region,
            tags=self.tags,
            opts=self.child,
        )
        self.network_role = authorization.RoleAssignment(
            "cluster-network-contributor",
            principal_id=self.identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=builtin_role(self.client.subscription_id, NETWORK_CONTRIBUTOR),
            scope=self.subnet_id,
            opts=self.child,
        )

    def _secrets_key(self) -> None:
        """Kubernetes Secrets encrypted with a Key Vault key (AKS KMS): a vault with RBAC,
        soft delete and purge protection, an RSA key, and the cluster identity as its crypto
        user. The vault name is global: a random suffix, kept in state."""
        s = self.settings
        keep = pulumi.ResourceOptions.merge(self.child, pulumi.ResourceOptions(protect=s.protect))
        suffix = self._kept_suffix("secrets-vault-suffix")
        base = s.cluster_name[:14].rstrip("-")
        self.vault = keyvault.Vault(
            "secrets-vault",
            resource_group_name=self.group.name,
            vault_name=suffix.apply(lambda x: f"{base}-{x}"),
            location=s.region,
            properties={
                "tenant_id": self.client.tenant_id,
                "sku": {"family": "A", "name": "standard"},
                "enable_rbac_authorization": True,
                "enable_soft_delete": True,
                "soft_delete_retention_in_days": 90,
                "enable_purge_protection": True,
            },
            tags=self.tags,
            opts=keep,
        )
        self.secrets_key = keyvault.Key(
            "secrets-key",
            resource_group_name=self.group.name,
            vault_name=self.vault.name,
            key_name="kubernetes-secrets",
            properties={"kty": "RSA", "key_size": 2048},
            opts=keep,
        )
        self.kms_role = authorization.RoleAssignment(
            "cluster-key-user",
            principal_id=self.identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=builtin_role(self.client.subscription_id, KEY_VAULT_CRYPTO_USER),
            scope=self.vault.id,
            opts=self.child,
        )

    def _logs(self) -> None:
        s = self.settings
        self.workspace = operationalinsights.Workspace(
            "logs",
            resource_group_name=self.group.name,
            workspace_name=f"{s.cluster_name}-logs",
            location=s.region,
            sku={"name": "PerGB2018"},
            retention_in_days=s.cluster.log_retention_days,
            tags=self.tags,
            opts=self.child,
        )

    # --- control plane ------------------------------------------------------------------

    def _identity_ready(self) -> pulumi.Output[str]:
        """The subnet id, resolved only once the cluster identity's role assignments (subnet,
        key vault) are listed by Azure RBAC: AKS checks both when it creates the cluster."""
        identity = self.identity.principal_id
        return once_effective(
            self.subnet_id,
            self.token,
            [identity, self.subnet_id, self.vault.id, self.network_role.id, self.kms_role.id],
            lambda token, a: (
                assignment_listed(a[1], a[0], NETWORK_CONTRIBUTOR, token)
                and assignment_listed(a[2], a[0], KEY_VAULT_CRYPTO_USER, token)
            ),
            "the cluster identity's roles (Network Contributor on the node subnet, Key Vault "
            "Crypto User on the secrets vault)",
            RBAC_HINT,
        )

    def _control_plane(self) -> None:
        s = self.settings
        np = s.node_pool
        low, high = SYSTEM_BOUNDS
        subnet = self._identity_ready()
        security = {
            "workload_identity": {"enabled": True},
            "azure_key_vault_kms": {
                "enabled": True,
                "key_id": self.secrets_key.key_uri_with_version,
                "key_vault_network_access": "Public",
            },
        }
        if s.cluster.defender:
            security["defender"] = {
                "log_analytics_workspace_resource_id": self.workspace.id,
                "security_monitoring": {"enabled": True},
            }
        self.cluster = containerservice.ManagedCluster(
            "cluster",
            resource_group_name=self.group.name,
            resource_name_=s.cluster_name,
            location=s.region,
            dns_prefix=s.cluster_name,
            kubernetes_version=s.kubernetes_version or None,
            identity={
                "type": "UserAssigned",
                "user_assigned_identities": [self.identity.id],
            },
            agent_pool_profiles=[
                {
                    # System pool: cluster add-ons only (tainted), so apps land on the user pool.
                    "name": SYSTEM_POOL,
                    "mode": "System",
                    "vm_size": SYSTEM_VM_SIZE,
                    # The live count inside the bounds: the cluster update sends it.
                    "count": scaled_size(self.live.get(SYSTEM_POOL), low, high, low),
                    "min_count": low,
                    "max_count": high,
                    "enable_auto_scaling": True,
                    "availability_zones": zones(s),
                    "os_type": "Linux",
                    "os_sku": "AzureLinux",
                    "type": "VirtualMachineScaleSets",
                    "vnet_subnet_id": subnet,
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
            security_profile=security,
            storage_profile={"disk_csi_driver": {"enabled": True}},
            # The Azure Verified Module's defaults: Azure Policy, and the Key Vault CSI driver
            # with secret rotation.
            addon_profiles={
                "azurepolicy": {"enabled": True},
                "azureKeyvaultSecretsProvider": {
                    "enabled": True,
                    "config": {"enableSecretRotation": "true", "rotationPollInterval": "2m"},
                },
            },
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
                "tenant_id": self.client.tenant_id,
            },
            disable_local_accounts=True,
            tags=self.tags,
            opts=pulumi.ResourceOptions.merge(
                self.child,
                pulumi.ResourceOptions(
                    depends_on=[self.network_role, self.kms_role],
                    protect=s.protect,
                    # AKS sets a pool's zones when it creates the pool: the system pool of a
                    # cluster created before zones keeps none (docs/UPGRADING.md).
                    ignore_changes=["agentPoolProfiles[0].availabilityZones"],
                ),
            ),
        )
        monitor.DiagnosticSetting(
            "control-plane-logs",
            name="control-plane-logs",
            resource_uri=self.cluster.id,
            workspace_id=self.workspace.id,
            # Resource-specific tables (AKSAudit, AKSControlPlane), not AzureDiagnostics.
            log_analytics_destination_type="Dedicated",
            logs=[{"category": c, "enabled": True} for c in CONTROL_PLANE_LOGS],
            opts=self.child,
        )

    # --- access -------------------------------------------------------------------------

    def _deployer_access(self) -> list[pulumi.Resource]:
        """clusterAdmins.azure (Entra object ids: groups, users, service principals, managed
        identities) get AKS RBAC Cluster Admin on the cluster, one assignment each, the same
        whoever runs `up`. With none configured, the identity that first creates the
        assignment keeps it: a later `up` by another identity does not move it."""
        s = self.settings
        role = builtin_role(self.client.subscription_id, AKS_RBAC_CLUSTER_ADMIN)
        principals: list[tuple[str, pulumi.Input[str], list[str]]] = [
            (f"admin-{short_hash(oid.lower())}", oid, []) for oid in s.cluster_admins.azure
        ]
        if not principals:
            principals = [("deployer-admin", self.client.object_id, ["principalId"])]
        return [
            authorization.RoleAssignment(
                name,
                principal_id=principal,
                role_definition_id=role,
                scope=self.cluster.id,
                opts=pulumi.ResourceOptions.merge(
                    self.child, pulumi.ResourceOptions(ignore_changes=pinned)
                ),
            )
            for name, principal, pinned in principals
        ]

    def _kubernetes_access(self, admin_roles: list[pulumi.Resource]) -> None:
        s = self.settings
        self.cluster_name = self.cluster.name
        # The user credentials carry only the server and its CA (no secret) with Entra ID on.
        creds = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=self.group.name,
            resource_name=self.cluster.name,
            format="exec",
            opts=self.invoke,
        )
        endpoint = creds.kubeconfigs.apply(
            lambda k: _cluster_of(base64.b64decode(k[0].value).decode())
        )
        kubeconfig = pulumi.Output.all(self.cluster.name, endpoint, self.client.tenant_id).apply(
            lambda a: aks_kubeconfig(a[0], a[1][0], a[1][1], a[2])
        )
        # The Kubernetes provider waits until the deployer's admin rights are effective.
        self.kubeconfig = pulumi.Output.secret(
            once_effective(
                kubeconfig,
                self.token,
                [self.cluster.id, *[r.id for r in admin_roles]],
                lambda token, a: caller_can(a[0], CLUSTER_ADMIN_DATA_ACTION, token),
                "Kubernetes admin rights of the identity running `pulumi up` on the cluster",
                f"{RBAC_HINT}. If that identity is not in pganalytics:clusterAdmins.azure "
                "(directly or through a group), add it: pulumi config set --path "
                f"'pganalytics:clusterAdmins.azure[{len(s.cluster_admins.azure)}]' <object id "
                "of `az ad signed-in-user show` or of the CI identity>",
            )
        )
        self.provider = k8s_provider(self, self.kubeconfig, s.cluster_name, depends_on=admin_roles)

    # --- nodes and maintenance ----------------------------------------------------------

    def _nodes(self) -> None:
        s, np = self.settings, self.settings.node_pool
        self.user_pool = containerservice.AgentPool(
            "user-pool",
            resource_group_name=self.group.name,
            resource_name_=self.cluster.name,
            agent_pool_name=user_pool_name(s),
            mode="User",
            # After the control plane: the version comes back from the cluster.
            orchestrator_version=self.cluster.kubernetes_version,
            upgrade_settings=UPGRADE_SETTINGS,
            vm_size=np.machine_type,
            availability_zones=zones(s),
            enable_auto_scaling=True,
            # The whole pool is sent on every update and AKS refuses a count outside the
            # bounds: the live count moved inside them (a new pool: desiredSize, or the size
            # the pool it replaces has now).
            count=scaled_size(
                self.live.get("user-pool"), np.min_size, np.max_size, np.desired_size
            ),
            min_count=np.min_size,
            max_count=np.max_size,
            os_type="Linux",
            os_sku="AzureLinux",
            os_disk_size_gb=np.disk_size_gb,
            type="VirtualMachineScaleSets",
            vnet_subnet_id=self.subnet_id,
            scale_set_priority="Spot" if np.spot else "Regular",
            scale_set_eviction_policy="Delete" if np.spot else None,
            spot_max_price=-1 if np.spot else None,
            node_labels={"pganalytics.io/pool": "default"},
            opts=self.child,
        )

    def _maintenance(self) -> None:
        """When AKS may apply the patch channel's Kubernetes upgrades (first configured day)
        and the NodeImage channel's node reimages (last day): nothing outside the windows."""
        s = self.settings
        days = s.maintenance.days
        for name, config, day in (
            ("maintenance-kubernetes", "aksManagedAutoUpgradeSchedule", days[0]),
            ("maintenance-node-os", "aksManagedNodeOSUpgradeSchedule", days[-1]),
        ):
            containerservice.MaintenanceConfiguration(
                name,
                resource_group_name=self.group.name,
                resource_name_=self.cluster.name,
                config_name=config,
                maintenance_window=maintenance_window(s, day),
                opts=self.child,
            )

    def _storage(self) -> None:
        s = self.settings
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
