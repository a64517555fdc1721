"""Target `aws`: an EKS cluster on its own VPC (or existing subnets), with KMS envelope
encryption of Secrets, control-plane logging, access entries for the configured admins, one
managed node group per zone that follows the control plane's version, the Cluster Autoscaler
(Pod Identity), and the managed add-ons (VPC CNI with network policy, CoreDNS, kube-proxy, Pod
Identity agent, EBS CSI driver), their versions and the nodes' AMI release pinned in state.

Upgrade order on a `kubernetesVersion` bump: control plane -> the add-ons nodes need to start
(VPC CNI, Pod Identity agent) -> node groups (version from the cluster's output, AMI release
newly resolved for the version) -> the other add-ons.

Plain pulumi_aws resources through an explicit provider built from settings, so an ambient
`aws:region` or default provider is never used. Layout: network.py (VPC), nodes.py (node
groups), identity.py (IAM), versions.py (what is pinned in state), autoscaler.py.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.previous import once_applied
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
    scaled_size,
    short_hash,
)
from components.targets.eks.autoscaler import cluster_autoscaler
from components.targets.eks.identity import (
    assume_role,
    pod_identity_trust,
    service_role,
)
from components.targets.eks.network import AWS_CREDENTIALS_HINT, Vpc, build_vpc
from components.targets.eks.nodes import (
    NODE_POOL_LABEL,
    ami_release_parameter,
    ami_type,
    bounds,
    instance_types,
    launch_template,
    live_sizes,
    node_group_key,
)
from components.targets.eks.versions import Pins

__all__ = ["EksCluster", "ami_release_parameter", "ami_type", "pod_identity_trust"]

CLUSTER_ADMIN_POLICY = "cluster-access-policy/AmazonEKSClusterAdminPolicy"
# Managed add-ons: EKS add-on name -> resource name (pod-identity-agent keeps the name it had
# before it was versioned). The first two run before the nodes: a node is Ready only once the
# CNI runs on it, and the CNI gets its AWS credentials through the Pod Identity agent.
BEFORE_NODES = {"vpc-cni": "vpc-cni", "eks-pod-identity-agent": "pod-identity-agent"}
AFTER_NODES = {"kube-proxy": "kube-proxy", "coredns": "coredns"}
# Service accounts of the add-ons that call AWS (their Pod Identity associations).
CNI_SERVICE_ACCOUNT = ("kube-system", "aws-node")
EBS_CSI_SERVICE_ACCOUNT = ("kube-system", "ebs-csi-controller-sa")


def eks_kubeconfig(name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (no long-lived token)."""
    return exec_kubeconfig(
        name,
        endpoint,
        ca_data,
        {
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", name, "--region", region],
        },
    )


class EksCluster(ClusterTarget):
    def __init__(self, name: str, args: TargetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pganalytics:targets:EksCluster", name, args, opts)
        s = args.settings
        self.aws_provider = aws.Provider(
            "aws",
            region=s.region,
            default_tags={"tags": merged_tags(s)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.child = pulumi.ResourceOptions(parent=self, provider=self.aws_provider)
        self.invoke = pulumi.InvokeOptions(parent=self, provider=self.aws_provider)
        self._check_inputs()
        # ARNs of AWS-managed policies carry the partition (aws, aws-us-gov, aws-cn).
        self.partition = aws.get_partition_output(opts=self.invoke).partition
        self.pins = Pins(self.previous)
        self.net = (
            build_vpc(s, s.cluster_name, self.child, self.invoke)
            if s.network.create
            else Vpc(list(s.network.subnet_ids))
        )
        self._control_plane()
        admin_policies = self._deployer_access()
        self._private_endpoint_access()
        self._addons_before_nodes()
        self._nodes()
        self._addons_after_nodes()
        self._ebs_csi()
        self._kubernetes_access(admin_policies)
        self.autoscaler = cluster_autoscaler(self)
        self._storage_and_load_balancer()
        self.snapshot_class = self._snapshot_class()
        self.record = self._record()
        self._outputs()

    # --- preview-time checks ------------------------------------------------------------

    def _check_inputs(self) -> None:
        """What EKS would refuse, before any resource: a version out of standard support, a
        node image of another Kubernetes minor, instance types of two architectures."""
        s = self.settings
        if s.kubernetes_version:
            self._check_version(s.kubernetes_version)
        problems = []
        image = s.cluster.node_image_version
        if image and s.kubernetes_version and not image.startswith(s.kubernetes_version + "."):
            problems.append(
                f"pganalytics:cluster.nodeImageVersion {image} is an AMI release for another "
                f"Kubernetes version than {s.kubernetes_version}; fix: pulumi config rm --path "
                "pganalytics:cluster.nodeImageVersion (the release SSM recommends)"
            )
        np = s.node_pool
        mixed = [t for t in np.extra_machine_types if ami_type(t) != ami_type(np.machine_type)]
        if mixed:
            problems.append(
                f"pganalytics:nodePool.extraMachineTypes has {mixed[0]}, of another CPU "
                f"architecture than {np.machine_type} (one AMI per node group); fix: pulumi "
                "config rm --path pganalytics:nodePool.extraMachineTypes"
            )
        if problems:
            raise ConfigError(problems, s.stack)

    def _check_version(self, version: str) -> None:
        """The version must exist on EKS and be in standard support: the cluster's upgrade
        policy is STANDARD, under which EKS would upgrade an extended-support version itself."""
        found = cloud_lookup(
            "the EKS versions",
            lambda: aws.eks.get_cluster_versions(include_all=True, opts=self.invoke),
            AWS_CREDENTIALS_HINT,
        )
        versions = {v.cluster_version: v.version_status for v in found.cluster_versions or []}
        standard = sorted(
            (v for v, status in versions.items() if status == "STANDARD_SUPPORT"),
            key=lambda v: tuple(int(x) for x in v.split(".")),
        )
        if versions.get(version) == "STANDARD_SUPPORT":
            return
        state = versions.get(version, "not offered")
        fix = standard[-1] if standard else "1.34"
        raise ConfigError(
            [
                f"pganalytics:kubernetesVersion {version} is {state.lower().replace('_', ' ')} "
                f"on EKS in {self.settings.region} (standard support: "
                f"{', '.join(standard) or 'none listed'}); fix: pulumi config set "
                f"pganalytics:kubernetesVersion {fix} (upgrade one minor version per `up`)"
            ],
            self.settings.stack,
        )

    # --- control plane ------------------------------------------------------------------

    def _control_plane(self) -> None:
        s, child = self.settings, self.child
        cname = s.cluster_name
        cluster_role, cluster_policies = service_role(
            "cluster",
            assume_role("eks.amazonaws.com", tag_session=True),
            {"cluster-policy": "AmazonEKSClusterPolicy"},
            self.partition,
            child,
        )
        # Envelope encryption of Kubernetes Secrets with a customer-managed, rotating key.
        secrets_key = aws.kms.Key(
            "secrets-key",
            description=f"EKS {cname}: envelope encryption of Kubernetes Secrets",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=s.protect)),
        )
        # EKS would create this group with infinite retention; owning it bounds the cost.
        log_group = aws.cloudwatch.LogGroup(
            "control-plane-logs",
            name=f"/aws/eks/{cname}/cluster",
            retention_in_days=s.cluster.log_retention_days,
            opts=child,
        )
        self.cluster = aws.eks.Cluster(
            "cluster",
            name=cname,
            role_arn=cluster_role.arn,
            version=s.kubernetes_version or None,
            vpc_config={
                "subnet_ids": self.net.subnet_ids,
                "endpoint_private_access": s.endpoint.private_access,
                "endpoint_public_access": s.endpoint.public_access,
                "public_access_cidrs": list(s.endpoint.public_cidrs)
                if s.endpoint.public_access
                else None,
            },
            encryption_config={"provider": {"key_arn": secrets_key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=list(s.cluster.control_plane_logs),
            # Access entries only (no aws-auth ConfigMap); the creator gets no implicit admin.
            access_config={
                "authentication_mode": "API",
                "bootstrap_cluster_creator_admin_permissions": False,
            },
            deletion_protection=s.protect,
            # No silent switch to paid extended support when a version ages out: upgrade.
            upgrade_policy={"support_type": "STANDARD"},
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[*cluster_policies, log_group], protect=s.protect
                ),
            ),
        )
        # Everything version-bound reads the version back from the cluster, so it moves only
        # after the control plane has.
        self.version = self.cluster.version

    def _private_endpoint_access(self) -> None:
        """HTTPS from endpoint.privateCidrs (a CI runner subnet, a VPN range) into the
        cluster security group, which guards the private endpoint's network interfaces: EKS
        lets in only the cluster's own members otherwise."""
        s = self.settings
        if not s.endpoint.private_access:
            return
        group = self.cluster.vpc_config.cluster_security_group_id
        for cidr in s.endpoint.private_cidrs:
            aws.vpc.SecurityGroupIngressRule(
                f"api-from-{short_hash(cidr)}",
                security_group_id=group,
                cidr_ipv4=cidr,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description=f"Kubernetes API from {cidr} (pganalytics:endpoint.privateCidrs)",
                opts=self.child,
            )

    # --- access -------------------------------------------------------------------------

    def _deployer_access(self) -> list[pulumi.Resource]:
        """Cluster admins from `clusterAdmins.aws`, one access entry each, named after the
        principal (stable whoever runs `up`). With no admins configured, the identity that
        first creates the entry keeps it: later runs by another identity do not move it."""
        s, child, invoke = self.settings, self.child, self.invoke
        policy_arn = pulumi.Output.concat(
            "arn:", self.partition, ":eks::aws:", CLUSTER_ADMIN_POLICY
        )
        principals: list[tuple[str, pulumi.Input[str], list[str]]] = [
            (f"admin-{short_hash(arn)}", arn, []) for arn in s.cluster_admins.aws
        ]
        if not principals:
            caller = aws.get_caller_identity_output(opts=invoke)
            deployer = aws.iam.get_session_context_output(arn=caller.arn, opts=invoke).issuer_arn
            principals = [("deployer", deployer, ["principalArn"])]
        associations = []
        for name, arn, pinned in principals:
            entry = aws.eks.AccessEntry(
                f"{name}-access",
                cluster_name=self.cluster.name,
                principal_arn=arn,
                type="STANDARD",
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(ignore_changes=pinned)
                ),
            )
            associations.append(
                aws.eks.AccessPolicyAssociation(
                    f"{name}-admin",
                    cluster_name=self.cluster.name,
                    principal_arn=entry.principal_arn,
                    policy_arn=policy_arn,
                    access_scope={"type": "cluster"},
                    opts=pulumi.ResourceOptions.merge(
                        child, pulumi.ResourceOptions(depends_on=[entry], ignore_changes=pinned)
                    ),
                )
            )
        return associations

    def _kubernetes_access(self, admin_policies: list[pulumi.Resource]) -> None:
        s = self.settings
        self.cluster_name = self.cluster.name
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority.data
            ).apply(lambda a: eks_kubeconfig(a[0], a[1], a[2], s.region))
        )
        self.provider = k8s_provider(
            self, self.kubeconfig, s.cluster_name, depends_on=admin_policies
        )

    def _pod_identity_role(
        self, name: str, service_account: tuple[str, str], policies: dict[str, str]
    ) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
        """A role only `service_account` of this cluster can assume through Pod Identity."""
        namespace, account = service_account
        trust = pod_identity_trust(self.cluster.arn, namespace, account)
        return service_role(name, trust, policies, self.partition, self.child)

    # --- nodes --------------------------------------------------------------------------

    def _nodes(self) -> None:
        """One managed node group per zone (nodes.py says why), each on the launch template,
        at the cluster's version and the pinned AMI release, sized from the live group."""
        s, child = self.settings, self.child
        np = s.node_pool
        node_role, node_policies = service_role(
            "node",
            assume_role("ec2.amazonaws.com"),
            # No AmazonEKS_CNI_Policy: the VPC CNI has its own Pod Identity role, and with
            # IMDSv2 hop limit 1 no pod can borrow the node role.
            {
                f"node-{policy}": policy
                for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly")
            },
            self.partition,
            child,
        )
        ami = ami_type(np.machine_type)
        self.node_image = self.pins.pinned(
            self.version,
            self.pins.node_image,
            s.cluster.node_image_version,
            # A public AMI release: the provider marks the whole invoke result secret, which
            # would hide the release (and so what rolls the nodes) in every preview.
            lambda v: pulumi.Output.unsecret(
                aws.ssm.get_parameter_output(
                    name=ami_release_parameter(v, ami), opts=self.invoke
                ).insecure_value
            ),
            lambda v: f"pulumi config set --path pganalytics:cluster.nodeImageVersion {v}",
        )
        template = launch_template(s, child)
        zones = len(self.net.subnet_ids)
        live = live_sizes(s, self.previous, zones, self.invoke)
        self.node_groups: list[aws.eks.NodeGroup] = []
        for i, (subnet, (low, high, initial)) in enumerate(
            zip(self.net.subnet_ids, bounds(s, zones), strict=True)
        ):
            self.node_groups.append(
                aws.eks.NodeGroup(
                    node_group_key(i),
                    cluster_name=self.cluster.name,
                    # No node_group_name: the provider picks a unique one, so a change that
                    # replaces the group (instance types, spot) creates the new group before
                    # deleting the old, with no name collision.
                    node_role_arn=node_role.arn,
                    subnet_ids=[subnet],
                    version=self.version,
                    release_version=self.node_image,
                    instance_types=instance_types(np.machine_type, np.spot, np.extra_machine_types),
                    capacity_type="SPOT" if np.spot else "ON_DEMAND",
                    ami_type=ami,
                    launch_template={
                        "id": template.id,
                        "version": template.latest_version.apply(str),
                    },
                    # The provider sends min, max and desired together, and EKS refuses
                    # min > desired: desired is the live size moved inside the new bounds
                    # (base.scaled_size), never the stale size of the last `up`.
                    scaling_config={
                        "min_size": low,
                        "max_size": high,
                        "desired_size": scaled_size(live[i], low, high, initial),
                    },
                    # A version, AMI or template update replaces one node at a time, drained.
                    update_config={"max_unavailable": 1},
                    labels=dict(NODE_POOL_LABEL),
                    opts=pulumi.ResourceOptions.merge(
                        child,
                        pulumi.ResourceOptions(
                            # Nodes join once their egress (NAT, routes) and CNI exist.
                            depends_on=[
                                *node_policies,
                                *self.net.egress,
                                *self.addons.values(),
                            ],
                        ),
                    ),
                )
            )

    # --- add-ons ------------------------------------------------------------------------

    def _addons_before_nodes(self) -> None:
        """The VPC CNI (with its own Pod Identity role) and the Pod Identity agent, before the
        nodes: a node becomes Ready only once the CNI runs on it."""
        cni_role, cni_policies = self._pod_identity_role(
            "vpc-cni", CNI_SERVICE_ACCOUNT, {"vpc-cni-policy": "AmazonEKS_CNI_Policy"}
        )
        self.addons: dict[str, aws.eks.Addon] = {}
        agent = self._addon(
            "eks-pod-identity-agent", self.child, BEFORE_NODES["eks-pod-identity-agent"]
        )
        self.addons["eks-pod-identity-agent"] = agent
        # Other components (backups) bind their service accounts through Pod Identity too.
        self.pod_identity_agent = agent
        self.addons["vpc-cni"] = self._addon(
            "vpc-cni",
            pulumi.ResourceOptions.merge(
                self.child, pulumi.ResourceOptions(depends_on=[agent, *cni_policies])
            ),
            pod_identity_associations=[
                {"role_arn": cni_role.arn, "service_account": CNI_SERVICE_ACCOUNT[1]}
            ],
        )

    def _addons_after_nodes(self) -> None:
        self.after_nodes = pulumi.ResourceOptions.merge(
            self.child, pulumi.ResourceOptions(depends_on=self.node_groups)
        )
        for addon, resource_name in AFTER_NODES.items():
            self.addons[addon] = self._addon(addon, self.after_nodes, resource_name)

    def _ebs_csi(self) -> None:
        ebs_role, ebs_policies = self._pod_identity_role(
            "ebs-csi",
            EBS_CSI_SERVICE_ACCOUNT,
            {"ebs-csi-policy": "service-role/AmazonEBSCSIDriverPolicy"},
        )
        self.ebs_csi = self.addons["aws-ebs-csi-driver"] = self._addon(
            "aws-ebs-csi-driver",
            pulumi.ResourceOptions.merge(
                self.after_nodes,
                pulumi.ResourceOptions(depends_on=[self.pod_identity_agent, *ebs_policies]),
            ),
            resource_name="ebs-csi-driver",
            pod_identity_associations=[
                {"role_arn": ebs_role.arn, "service_account": EBS_CSI_SERVICE_ACCOUNT[1]}
            ],
        )

    def _addon(
        self,
        addon: str,
        opts: pulumi.ResourceOptions,
        resource_name: str | None = None,
        **extra,
    ) -> aws.eks.Addon:
        """A managed add-on at its pinned version (versions.py): the recorded one, an
        explicit cluster.addonVersions entry, or the newest for a new cluster version."""
        version = self.pins.pinned(
            self.version,
            self.pins.addons.get(addon, ""),
            self.settings.cluster.addon_versions.get(addon, ""),
            lambda v: (
                aws.eks.get_addon_version_output(
                    addon_name=addon, kubernetes_version=v, most_recent=True, opts=self.invoke
                ).version
            ),
            lambda v: f"pulumi config set --path pganalytics:cluster.addonVersions.{addon} {v}",
        )
        config = None
        if addon == "vpc-cni":
            # The CNI's network policy agent enforces Kubernetes NetworkPolicy.
            config = json.dumps({"enableNetworkPolicy": "true"})
        return aws.eks.Addon(
            resource_name or addon,
            cluster_name=self.cluster.name,
            addon_name=addon,
            addon_version=version,
            configuration_values=config,
            # The cluster's bootstrap copies of vpc-cni, kube-proxy and CoreDNS are adopted.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=opts,
            **extra,
        )

    def _snapshot_class(self) -> SnapshotClassSpec:
        """EBS snapshots through the EBS CSI driver. EKS ships neither the VolumeSnapshot CRDs
        nor their controller: the managed `snapshot-controller` addon installs both, only when
        the chart's volumeSnapshots are on."""
        spec = SnapshotClassSpec("ebs.csi.aws.com")
        if self.settings.chart.snapshots_enabled:
            self.snapshot_controller = self.addons["snapshot-controller"] = self._addon(
                "snapshot-controller",
                pulumi.ResourceOptions.merge(
                    self.after_nodes, pulumi.ResourceOptions(depends_on=[self.ebs_csi])
                ),
            )
            spec.dependencies.append(self.snapshot_controller)
        return spec

    # --- autoscaling, storage, load balancers --------------------------------------------

    def _storage_and_load_balancer(self) -> None:
        s = self.settings
        params = {"type": s.storage.type, "encrypted": "true", "fsType": "ext4"}
        if s.storage.type in ("io1", "io2"):
            params["iopsPerGB"] = "50"
        # EKS (1.30 and later) annotates no StorageClass as the default: nothing to demote.
        self._create_storage_class(StorageClassSpec("ebs.csi.aws.com", params))
        # The in-tree AWS cloud provider makes a Network Load Balancer for the controller.
        self.lb_annotations = {
            "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
            # Spread connections over every zone's controller pods.
            "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": (
                "true"
            ),
        }
        self.workload_dependencies = [*self.node_groups, self.ebs_csi, self.addons["vpc-cni"]]

    def _record(self) -> pulumi.Output:
        """What the next update reads back (clusterRecord): the node groups' names (to read
        their live size) and the versions pinned for the cluster's minor, once applied."""
        value = {
            "nodePools": {
                node_group_key(i): g.node_group_name for i, g in enumerate(self.node_groups)
            },
            "versions": {
                "kubernetes": self.version,
                "nodeImage": self.node_image,
                "addons": {name: a.addon_version for name, a in self.addons.items()},
            },
        }
        applied = [*self.node_groups, *self.addons.values()]
        return once_applied(applied, pulumi.Output.from_input(value))
