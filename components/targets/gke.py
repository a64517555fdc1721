"""Target `gcp`: a GKE cluster on a VPC-native network (or an existing one), with Workload
Identity, shielded nodes, Dataplane V2 (which enforces NetworkPolicy), a release channel
checked against the versions it offers, private nodes (with Cloud NAT for egress), a
separately managed autoscaling node pool whose version follows the control plane, admins from
`clusterAdmins.gcp`, and a pd-balanced / pd-ssd StorageClass.

Everything goes through an explicit gcp.Provider built from settings.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from components.settings import ConfigError
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
# What the admins in clusterAdmins.gcp get: full Kubernetes API access through IAM.
ADMIN_ROLE = "roles/container.admin"
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


class GkeCluster(ClusterTarget):
    def __init__(self, name: str, args: TargetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pganalytics:targets:GkeCluster", name, args, opts)
        s = args.settings
        cname = s.cluster_name
        project = s.gcp_project
        location = s.cluster.zone if s.cluster.zonal else s.region

        self.gcp_provider = gcp.Provider(
            "gcp",
            project=project,
            region=s.region,
            default_labels={_label(k): _label(v) for k, v in merged_tags(s).items()},
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=self.gcp_provider)
        invoke = pulumi.InvokeOptions(parent=self, provider=self.gcp_provider)
        if s.kubernetes_version:
            self._check_version(s.kubernetes_version, location, invoke)

        # --- network --------------------------------------------------------------------
        if s.network.create:
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
            network_id, subnet_id = network.id, subnet.id
            pods_range, services_range = "pods", "services"
            if s.cluster.private_nodes:
                # Private nodes have no external IP: Cloud NAT gives them egress (image pulls).
                router = gcp.compute.Router(
                    "router",
                    name=f"{cname}-router",
                    region=s.region,
                    network=network.id,
                    opts=child,
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
        else:
            network_id, subnet_id = s.network.vpc_id, s.network.subnet_ids[0]
            pods_range, services_range = s.network.pods_range_name, s.network.services_range_name

        # --- node identity: a least-privilege service account, not the default one -----
        node_sa = gcp.serviceaccount.Account(
            "node-sa",
            account_id=f"{cname}-nodes"[:30].rstrip("-"),
            display_name=f"GKE nodes of {cname}",
            opts=child,
        )
        for role in NODE_ROLES:
            gcp.projects.IAMMember(
                f"node-sa-{role.split('/')[1]}",
                project=project,
                role=role,
                member=node_sa.email.apply(lambda e: f"serviceAccount:{e}"),
                opts=child,
            )

        private_cfg = None
        if s.cluster.private_nodes:
            private_cfg = {
                "enable_private_nodes": True,
                "enable_private_endpoint": not s.endpoint.public_access,
                "master_ipv4_cidr_block": s.cluster.master_cidr,
            }
        self.cluster = gcp.container.Cluster(
            "cluster",
            name=cname,
            location=location,
            network=network_id,
            subnetwork=subnet_id,
            min_master_version=s.kubernetes_version or None,
            release_channel={"channel": s.cluster.release_channel},
            # The default pool cannot be managed well in place: drop it, manage our own.
            remove_default_node_pool=True,
            initial_node_count=1,
            networking_mode="VPC_NATIVE",
            # Dataplane V2 (eBPF): enforces NetworkPolicy, which the legacy datapath does not.
            # Fixed at creation: a cluster created without it is replaced to get it.
            datapath_provider="ADVANCED_DATAPATH",
            ip_allocation_policy={
                "cluster_secondary_range_name": pods_range,
                "services_secondary_range_name": services_range,
            },
            workload_identity_config={"workload_pool": f"{project}.svc.id.goog"},
            enable_shielded_nodes=True,
            private_cluster_config=private_cfg,
            master_authorized_networks_config={
                "cidr_blocks": [
                    {"cidr_block": c, "display_name": f"allowed-{i}"}
                    for i, c in enumerate(s.endpoint.public_cidrs)
                ]
            }
            if s.endpoint.public_access
            else {"cidr_blocks": []},
            addons_config={"gce_persistent_disk_csi_driver_config": {"enabled": True}},
            logging_config={"enable_components": ["SYSTEM_COMPONENTS", "APISERVER", "WORKLOADS"]},
            deletion_protection=s.protect,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=s.protect)),
        )

        self._admins(s, project, child)

        np = s.node_pool
        self.node_pool = gcp.container.NodePool(
            "node-pool",
            # No name: the provider generates a unique one, so a change that replaces the
            # pool creates the new pool before deleting the old, with no name collision.
            cluster=self.cluster.id,
            location=location,
            # The nodes follow the control plane: a version bump updates the master first,
            # then this pool (a surge upgrade), never the other way round. Auto-upgrade (which
            # release channels require) also only ever moves nodes to the master's version,
            # so the two agree instead of fighting.
            version=self.cluster.master_version,
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
                "machine_type": np.machine_type,
                "spot": np.spot,
                "disk_size_gb": np.disk_size_gb,
                "disk_type": "pd-balanced",
                "service_account": node_sa.email,
                "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                "workload_metadata_config": {"mode": "GKE_METADATA"},
                "shielded_instance_config": {
                    "enable_secure_boot": True,
                    "enable_integrity_monitoring": True,
                },
                "labels": {"pganalytics-io-pool": "default"},
            },
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(ignore_changes=["initialNodeCount"])
            ),
        )

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
        self.provider = k8s_provider(self, self.kubeconfig, cname)

        params = {"type": s.storage.type}
        self._create_storage_class(
            StorageClassSpec("pd.csi.storage.gke.io", params), cloud_default=GKE_DEFAULT_CLASS
        )
        # GKE's L4 load balancer needs nothing special for a public controller.
        self.lb_annotations = {}
        self.workload_dependencies = [self.node_pool]
        # GKE ships the VolumeSnapshot CRDs and controller with its PD CSI driver.
        self.snapshot_class = SnapshotClassSpec("pd.csi.storage.gke.io", {})
        self._outputs()

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

    def _admins(self, s, project: str, child: pulumi.ResourceOptions) -> None:
        """clusterAdmins.gcp get roles/container.admin, named after each member, so the
        bindings are the same whoever runs `up`. GKE IAM roles bind at project level."""
        for member in s.cluster_admins.gcp:
            gcp.projects.IAMMember(
                f"admin-{short_hash(member)}",
                project=project,
                role=ADMIN_ROLE,
                member=member,
                opts=child,
            )
