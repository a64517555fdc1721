"""Target `gcp`: a GKE cluster on a VPC-native network (or an existing one), with Workload
Identity, shielded nodes, Dataplane V2 (which enforces NetworkPolicy), Secrets encrypted with
a rotating Cloud KMS key, a release channel checked against the versions it offers and a
maintenance window with exclusions, private nodes (with Cloud NAT for egress), a separately
managed autoscaling node pool the channel upgrades, admins from `clusterAdmins.gcp` scoped to
this cluster, and a pd-* / hyperdisk-balanced StorageClass.

Everything goes through an explicit gcp.Provider built from settings.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.settings import ConfigError, Settings
from components.settings.cluster import GKE_HYPERDISK_ONLY, gke_family
from components.settings.maintenance import TIMESTAMP
from components.targets.base import (
    ClusterTarget,
    SnapshotClassSpec,
    StorageClassSpec,
    TargetArgs,
    cloud_lookup,
    exec_kubeconfig,
    k8s_provider,
    merged_tags,
    minor,
    short_hash,
)

NODE_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
)
# What the admins in clusterAdmins.gcp get on the project: read the cluster and fetch its
# credentials. Their Kubernetes access is a ClusterRoleBinding on this cluster.
ADMIN_VIEWER_ROLE = "roles/container.clusterViewer"
# The temporary default pool (removed right after the cluster is created).
DEFAULT_POOL_MACHINE = "e2-small"
SECRETS_KEY_ROTATION = f"{90 * 24 * 3600}s"
RRULE_DAYS = {
    "Monday": "MO",
    "Tuesday": "TU",
    "Wednesday": "WE",
    "Thursday": "TH",
    "Friday": "FR",
    "Saturday": "SA",
    "Sunday": "SU",
}
WINDOW_REFERENCE = datetime(2025, 1, 4)
# The class GKE marks as its default.
GKE_DEFAULT_CLASS = "standard-rwo"
GCP_CREDENTIALS_HINT = (
    "give the preview Google credentials (gcloud auth application-default login, or "
    "GOOGLE_APPLICATION_CREDENTIALS / workload identity federation on CI) with "
    "container.clusters.getServerConfig (roles/container.viewer) on the project"
)


def _label(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in value.lower())[:63]


def gke_kubeconfig(name: str, endpoint: str, ca_data: str) -> str:
    """A kubeconfig that authenticates with gke-gcloud-auth-plugin."""
    return exec_kubeconfig(
        name,
        f"https://{endpoint}",
        ca_data,
        {
            "command": "gke-gcloud-auth-plugin",
            "installHint": "Install gke-gcloud-auth-plugin: "
            "gcloud components install gke-gcloud-auth-plugin",
            "provideClusterInfo": True,
        },
    )


def maintenance_policy(settings: Settings) -> dict:
    """The cluster's maintenance policy: the window on every listed day (RRULE), from the
    configured start for durationHours, and one exclusion per configured one (GKE API
    MaintenancePolicy: RecurringTimeWindow, MaintenanceExclusion with its scope)."""
    m = settings.maintenance
    hour, minute = (int(x) for x in m.start_time.split(":"))
    # Any past date: GKE takes the time of day and the length from it.
    start = WINDOW_REFERENCE.replace(hour=hour, minute=minute)
    end = start + timedelta(hours=m.duration_hours)
    exclusions = []
    for e in m.exclusions:
        exclusion = {"exclusion_name": e.name, "start_time": e.start, "end_time": e.end}
        if e.scope != "NO_UPGRADES":  # the API's default scope
            exclusion["exclusion_options"] = {"scope": e.scope}
        exclusions.append(exclusion)
    return {
        "recurring_window": {
            "start_time": start.strftime(TIMESTAMP),
            "end_time": end.strftime(TIMESTAMP),
            "recurrence": "FREQ=WEEKLY;BYDAY=" + ",".join(RRULE_DAYS[d] for d in m.days),
        },
        "maintenance_exclusions": exclusions,
    }


def boot_disk_type(machine_type: str) -> str:
    """Hyperdisk-only families (n4, c4, c4a...) cannot boot from a pd-* disk."""
    return "hyperdisk-balanced" if gke_family(machine_type) in GKE_HYPERDISK_ONLY else "pd-balanced"


def rbac_subject(member: str) -> dict:
    """A clusterAdmins.gcp member as a Kubernetes RBAC subject: GKE authenticates users and
    service accounts by their e-mail, and group members through Google Groups for RBAC."""
    kind, _, email = member.partition(":")
    return {
        "kind": "Group" if kind == "group" else "User",
        "name": email,
        "apiGroup": "rbac.authorization.k8s.io",
    }


class GkeCluster(ClusterTarget):
    def __init__(self, name: str, args: TargetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pganalytics:targets:GkeCluster", name, args, opts)
        s = args.settings
        self.location = s.cluster.zone if s.cluster.zonal else s.region
        self.gcp_provider = gcp.Provider(
            "gcp",
            project=s.gcp_project,
            region=s.region,
            default_labels={_label(k): _label(v) for k, v in merged_tags(s).items()},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.child = pulumi.ResourceOptions(parent=self, provider=self.gcp_provider)
        self.invoke = pulumi.InvokeOptions(parent=self, provider=self.gcp_provider)
        if s.kubernetes_version:
            self._check_version(s.kubernetes_version, self.location, self.invoke)
        self._network()
        self._node_identity()
        self._secrets_key()
        self._control_plane()
        self._nodes()
        self._kubernetes_access()
        self._deployer_access()
        self._storage()
        self._outputs()

    # --- network --------------------------------------------------------------------------

    def _network(self) -> None:
        s, child, cname = self.settings, self.child, self.settings.cluster_name
        if not s.network.create:
            self.network_id, self.subnet_id = s.network.vpc_id, s.network.subnet_ids[0]
            self.ranges = (s.network.pods_range_name, s.network.services_range_name)
            return
        network = gcp.compute.Network(
            "network", name=cname, auto_create_subnetworks=False, opts=child
        )
        subnet = gcp.compute.Subnetwork(
            "subnet",
            name=f"{cname}-nodes",
            region=s.region,
            network=network.id,
            ip_cidr_range=s.network.cidr,
            # VPC-native: pods and services get their own secondary ranges.
            secondary_ip_ranges=[
                {"range_name": "pods", "ip_cidr_range": s.network.pod_cidr},
                {"range_name": "services", "ip_cidr_range": s.network.service_cidr},
            ],
            private_ip_google_access=True,
            opts=child,
        )
        self.network_id, self.subnet_id = network.id, subnet.id
        self.ranges = ("pods", "services")
        if s.cluster.private_nodes:
            # Private nodes have no external IP: Cloud NAT gives them egress (image pulls).
            router = gcp.compute.Router(
                "router", name=f"{cname}-router", region=s.region, network=network.id, opts=child
            )
            gcp.compute.RouterNat(
                "nat",
                name=f"{cname}-nat",
                router=router.name,
                region=s.region,
                nat_ip_allocate_option="AUTO_ONLY",
                source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
                opts=child,
            )

    # --- identities and keys ----------------------------------------------------------------

    def _node_identity(self) -> None:
        """A least-privilege service account for every node, the temporary default pool's
        included: not the Compute Engine default account (Editor on the project, and disabled
        in many organizations)."""
        s = self.settings
        self.node_sa = gcp.serviceaccount.Account(
            "node-sa",
            account_id=f"{s.cluster_name}-nodes"[:30].rstrip("-"),
            display_name=f"GKE nodes of {s.cluster_name}",
            opts=self.child,
        )
        self.node_roles = [
            gcp.projects.IAMMember(
                f"node-sa-{role.split('/')[1]}",
                project=s.gcp_project,
                role=role,
                member=self.node_sa.email.apply(lambda e: f"serviceAccount:{e}"),
                opts=self.child,
            )
            for role in NODE_ROLES
        ]

    def _node_config(self, machine_type: str) -> dict:
        return {
            "machine_type": machine_type,
            "disk_type": boot_disk_type(machine_type),
            "service_account": self.node_sa.email,
            "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            "workload_metadata_config": {"mode": "GKE_METADATA"},
            "shielded_instance_config": {
                "enable_secure_boot": True,
                "enable_integrity_monitoring": True,
            },
        }

    def _secrets_key(self) -> None:
        """Application-layer encryption of Kubernetes Secrets with a Cloud KMS key that rotates
        every 90 days; GKE's service agent may use it (GKE docs, "Encrypt secrets at the
        application layer"). Key ring and key are kept: a destroyed key loses every Secret."""
        s = self.settings
        keep = pulumi.ResourceOptions.merge(self.child, pulumi.ResourceOptions(protect=s.protect))
        # Cloud KMS never deletes a key ring: a stack created again under the same cluster
        # name needs a new ring name, hence a suffix kept in state.
        suffix = self._kept_suffix("secrets-keyring-suffix")
        ring = gcp.kms.KeyRing(
            "secrets-keyring",
            name=suffix.apply(lambda x: f"{s.cluster_name}-secrets-{x}"),
            location=s.region,
            opts=keep,
        )
        self.secrets_key = gcp.kms.CryptoKey(
            "secrets-key",
            name="kubernetes-secrets",
            key_ring=ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=SECRETS_KEY_ROTATION,
            opts=keep,
        )
        project = gcp.organizations.get_project_output(project_id=s.gcp_project, opts=self.invoke)
        self.secrets_key_user = gcp.kms.CryptoKeyIAMMember(
            "secrets-key-gke",
            crypto_key_id=self.secrets_key.id,
            role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
            member=project.number.apply(
                lambda n: (
                    f"serviceAccount:service-{n}@container-engine-robot.iam.gserviceaccount.com"
                )
            ),
            opts=self.child,
        )

    # --- control plane ------------------------------------------------------------------

    def _authorized_networks(self) -> dict:
        """Who reaches the API: publicCidrs on a public endpoint, and privateCidrs (runner
        subnets, VPN ranges) on either, since GKE applies master authorized networks to the
        private endpoint too and empties them otherwise."""
        e = self.settings.endpoint
        public = e.public_cidrs if e.public_access else []
        # allowed-<i>: the names 3d03071 gave the public ranges (no needless diff).
        blocks = [(c, f"allowed-{i}") for i, c in enumerate(public)]
        blocks += [(c, f"private-{i}") for i, c in enumerate(e.private_cidrs)]
        return {"cidr_blocks": [{"cidr_block": c, "display_name": n} for c, n in blocks]}

    def _control_plane(self) -> None:
        s, cname = self.settings, self.settings.cluster_name
        private_cfg = None
        if s.cluster.private_nodes:
            private_cfg = {
                "enable_private_nodes": True,
                "enable_private_endpoint": not s.endpoint.public_access,
                "master_ipv4_cidr_block": s.cluster.master_cidr,
            }
        pods_range, services_range = self.ranges
        self.cluster = gcp.container.Cluster(
            "cluster",
            name=cname,
            location=self.location,
            network=self.network_id,
            subnetwork=self.subnet_id,
            min_master_version=s.kubernetes_version or None,
            release_channel={"channel": s.cluster.release_channel},
            # The default pool cannot be managed well in place: drop it, manage our own. Until
            # it is dropped it runs as the node service account (item 7 of issue 21).
            remove_default_node_pool=True,
            initial_node_count=1,
            node_config=self._node_config(DEFAULT_POOL_MACHINE),
            networking_mode="VPC_NATIVE",
            # Dataplane V2 (eBPF): enforces NetworkPolicy, which the legacy datapath does not.
            # Fixed at creation: a cluster created without it is replaced to get it.
            datapath_provider="ADVANCED_DATAPATH",
            ip_allocation_policy={
                "cluster_secondary_range_name": pods_range,
                "services_secondary_range_name": services_range,
            },
            workload_identity_config={"workload_pool": f"{s.gcp_project}.svc.id.goog"},
            enable_shielded_nodes=True,
            private_cluster_config=private_cfg,
            master_authorized_networks_config=self._authorized_networks(),
            # Google Groups for RBAC: group members in clusterAdmins.gcp reach the cluster.
            authenticator_groups_config={"security_group": s.cluster.rbac_security_group}
            if s.cluster.rbac_security_group
            else None,
            database_encryption={"state": "ENCRYPTED", "key_name": self.secrets_key.id},
            maintenance_policy=maintenance_policy(s),
            addons_config={"gce_persistent_disk_csi_driver_config": {"enabled": True}},
            logging_config={"enable_components": ["SYSTEM_COMPONENTS", "APISERVER", "WORKLOADS"]},
            deletion_protection=s.protect,
            opts=pulumi.ResourceOptions.merge(
                self.child,
                pulumi.ResourceOptions(
                    protect=s.protect,
                    depends_on=[*self.node_roles, self.secrets_key_user],
                    # The default pool's config forces a new cluster, and the pool is gone once
                    # the cluster exists: it only matters when the cluster is created.
                    ignore_changes=["nodeConfig"],
                ),
            ),
        )

    # --- nodes --------------------------------------------------------------------------

    def _nodes(self) -> None:
        """The workload pool, channel-managed: no `version` (the pulumi-gcp docs: a version
        and auto-upgrade "will fight each other"). GKE creates it at the master's version and
        the release channel upgrades it in the maintenance window; a kubernetesVersion bump
        moves the master, the nodes follow in the next window."""
        s, np = self.settings, self.settings.node_pool
        self.node_pool = gcp.container.NodePool(
            "node-pool",
            # No name: the provider generates a unique one, so a change that replaces the
            # pool creates the new pool before deleting the old, with no name collision.
            cluster=self.cluster.id,
            location=self.location,
            # One extra node at a time, none taken away before its replacement is ready.
            upgrade_settings={"strategy": "SURGE", "max_surge": 1, "max_unavailable": 0},
            initial_node_count=max(1, np.desired_size // (1 if s.cluster.zonal else 3)),
            # total_*: the bounds mean the whole pool, as on the other clouds, not per zone.
            autoscaling={
                "total_min_node_count": np.min_size,
                "total_max_node_count": np.max_size,
                "location_policy": "BALANCED",
            },
            management={"auto_repair": True, "auto_upgrade": True},
            node_config={
                **self._node_config(np.machine_type),
                "spot": np.spot,
                "disk_size_gb": np.disk_size_gb,
                "labels": {"pganalytics-io-pool": "default"},
            },
            opts=pulumi.ResourceOptions.merge(
                self.child, pulumi.ResourceOptions(ignore_changes=["initialNodeCount"])
            ),
        )

    # --- access -------------------------------------------------------------------------

    def _kubernetes_access(self) -> None:
        s = self.settings
        self.cluster_name = self.cluster.name
        endpoint = (
            self.cluster.private_cluster_config.apply(lambda c: c.private_endpoint if c else None)
            if not s.endpoint.public_access
            else self.cluster.endpoint
        )
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                self.cluster.name, endpoint, self.cluster.master_auth.cluster_ca_certificate
            ).apply(lambda a: gke_kubeconfig(a[0], a[1], a[2]))
        )
        self.provider = k8s_provider(self, self.kubeconfig, s.cluster_name)

    def _deployer_access(self) -> None:
        """clusterAdmins.gcp are cluster-admin on this cluster only (Kubernetes RBAC), not
        roles/container.admin on every cluster of the project; on the project they get
        roles/container.clusterViewer, which lets them fetch the cluster's credentials. One
        binding per member, named after it: the same whoever runs `up`."""
        s = self.settings
        for member in s.cluster_admins.gcp:
            gcp.projects.IAMMember(
                f"admin-{short_hash(member)}",
                project=s.gcp_project,
                role=ADMIN_VIEWER_ROLE,
                member=member,
                opts=self.child,
            )
        if s.cluster_admins.gcp:
            k8s.rbac.v1.ClusterRoleBinding(
                "cluster-admins",
                metadata={"name": "pganalytics-cluster-admins"},
                role_ref={
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                subjects=[rbac_subject(m) for m in s.cluster_admins.gcp],
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
            )

    def _storage(self) -> None:
        s = self.settings
        self._create_storage_class(
            StorageClassSpec("pd.csi.storage.gke.io", {"type": s.storage.type}),
            cloud_default=GKE_DEFAULT_CLASS,
        )
        # GKE's L4 load balancer needs nothing special for a public controller.
        self.lb_annotations = {}
        self.workload_dependencies = [self.node_pool]
        # GKE ships the VolumeSnapshot CRDs and controller with its PD CSI driver.
        self.snapshot_class = SnapshotClassSpec("pd.csi.storage.gke.io", {})

    def _check_version(self, version: str, location: str, invoke: pulumi.InvokeOptions) -> None:
        """GKE refuses a minimum master version its release channel does not offer yet (for
        example 1.34 on STABLE before 1.34 reaches STABLE): check the pair at preview."""
        s = self.settings
        channel = s.cluster.release_channel
        found = cloud_lookup(
            f"the GKE versions of {location}",
            lambda: gcp.container.get_engine_versions(
                location=location, project=s.gcp_project, opts=invoke
            ),
            GCP_CREDENTIALS_HINT,
        )
        latest_by_channel = dict(found.release_channel_latest_version or {})
        latest = latest_by_channel.get(channel)
        exact = version.count(".") >= 2
        problem = None
        if latest is None:
            problem = f"channel {channel} offers no version in {location}"
        elif minor(version) > minor(latest):
            problem = f"is not in the {channel} channel yet (newest there: {latest})"
        elif exact and not any(
            v == version or v.startswith(version + "-") for v in found.valid_master_versions or []
        ):
            problem = f"is not a version GKE offers in {location}"
        if problem is None:
            return
        offering = sorted(
            (c for c, v in latest_by_channel.items() if latest and minor(v) >= minor(version)),
        )
        fixes = (
            [f"pulumi config set pganalytics:kubernetesVersion {'.'.join(map(str, minor(latest)))}"]
            if latest
            else []
        )
        fixes += [
            f"pulumi config set --path pganalytics:cluster.releaseChannel {c}" for c in offering
        ]
        raise ConfigError(
            [
                f"pganalytics:kubernetesVersion {version} {problem}; fix: "
                + " or ".join(fixes or ["pulumi config rm pganalytics:kubernetesVersion"])
            ],
            s.stack,
        )
