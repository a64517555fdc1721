"""Target `aws`: an EKS cluster on its own VPC (or existing subnets), with KMS envelope
encryption of Secrets, control-plane logging, access entries for the configured admins, a
managed node group that follows the control plane's version, the Cluster Autoscaler (Pod
Identity), and the managed addons (VPC CNI with network policy, CoreDNS, kube-proxy, Pod
Identity agent, EBS CSI driver) at the versions EKS publishes for the cluster version.

Upgrade order on a `kubernetesVersion` bump: control plane -> node group (version from the
cluster's output, AMI release from the version's SSM parameter) -> addons (versions resolved
for the cluster's version, depending on the node group).

Plain pulumi_aws resources through an explicit provider built from settings, so an ambient
`aws:region` or default provider is never used.
"""

from __future__ import annotations

import ipaddress
import json
import re

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

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
    short_hash,
)

CLUSTER_ADMIN_POLICY = "cluster-access-policy/AmazonEKSClusterAdminPolicy"
# Zone ids where EKS cannot place its control plane (EKS user guide, "Subnet requirements").
CONTROL_PLANE_EXCLUDED_ZONE_IDS = ("use1-az3", "usw1-az2", "cac1-az3")
# Managed addons, upgraded after the nodes. vpc-cni enforces NetworkPolicy (its node agent).
# addon -> resource name (pod-identity-agent keeps the name it had before it was versioned).
MANAGED_ADDONS = {
    "vpc-cni": "vpc-cni",
    "kube-proxy": "kube-proxy",
    "coredns": "coredns",
    "eks-pod-identity-agent": "pod-identity-agent",
}
CLUSTER_AUTOSCALER_CHART = (
    "cluster-autoscaler",
    "9.52.1",
    "https://kubernetes.github.io/autoscaler",
)
CLUSTER_AUTOSCALER_SA = "cluster-autoscaler"
AWS_CREDENTIALS_HINT = (
    "give the preview AWS credentials (aws sso login / AWS_PROFILE, or the CI role through "
    "OIDC) with eks:DescribeClusterVersions and ec2:DescribeAvailabilityZones"
)


def _assume_role(service: str, tag_session: bool = False) -> str:
    actions = ["sts:AssumeRole", "sts:TagSession"] if tag_session else "sts:AssumeRole"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": actions}
            ],
        }
    )


def ami_type(instance_type: str) -> str:
    """Graviton families (m7g, c6gn, t4g, ...) need the ARM image."""
    family = instance_type.split(".")[0]
    return (
        "AL2023_ARM_64_STANDARD"
        if re.fullmatch(r"[a-z]+\d+[a-z]*g[a-z]*(-[a-z]+)?", family)
        else "AL2023_x86_64_STANDARD"
    )


def ami_release_parameter(version: str, ami: str) -> str:
    """The SSM parameter that names the newest EKS-optimized AL2023 release for `version`."""
    arch = "arm64" if ami == "AL2023_ARM_64_STANDARD" else "x86_64"
    return (
        f"/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/{arch}/standard/"
        "recommended/release_version"
    )


def autoscaler_policy(cluster_name: str) -> str:
    """Least privilege for the Cluster Autoscaler: read everywhere, scale only the groups
    tagged as this cluster's (managed node groups carry the tag)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeAutoScalingInstances",
                        "autoscaling:DescribeLaunchConfigurations",
                        "autoscaling:DescribeScalingActivities",
                        "autoscaling:DescribeTags",
                        "ec2:DescribeImages",
                        "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplateVersions",
                        "ec2:GetInstanceTypesFromInstanceRequirements",
                        "eks:DescribeNodegroup",
                    ],
                    "Resource": "*",
                },
                {
                    "Effect": "Allow",
                    "Action": [
                        "autoscaling:SetDesiredCapacity",
                        "autoscaling:TerminateInstanceInAutoScalingGroup",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"
                        }
                    },
                },
            ],
        }
    )


def eks_kubeconfig(name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (no long-lived token)."""
    return exec_kubeconfig(
        name,
        endpoint,
        ca_data,
        {
            "command": "aws",
            "args": [
                "eks",
                "get-token",
                "--cluster-name",
                name,
                "--region",
                region,
                "--output",
                "json",
            ],
        },
    )


class EksCluster(ClusterTarget):
    def __init__(self, name: str, args: TargetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pganalytics:targets:EksCluster", name, args, opts)
        s = args.settings
        cname = s.cluster_name

        self.aws_provider = aws.Provider(
            "aws",
            region=s.region,
            default_tags={"tags": merged_tags(s)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=self.aws_provider)
        invoke = pulumi.InvokeOptions(parent=self, provider=self.aws_provider)

        if s.kubernetes_version:
            self._check_version(s.kubernetes_version, invoke)

        # ARNs of AWS-managed policies carry the partition (aws, aws-us-gov, aws-cn).
        partition = aws.get_partition_output(opts=invoke).partition

        def service_role(
            name: str, service: str, policies: dict[str, str], tag_session: bool = True
        ) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
            """A role `service` assumes, with AWS-managed policies attached
            ({attachment's resource name: policy name})."""
            role = aws.iam.Role(
                f"{name}-role",
                assume_role_policy=_assume_role(service, tag_session=tag_session),
                opts=child,
            )
            attachments = [
                aws.iam.RolePolicyAttachment(
                    resource_name,
                    role=role.name,
                    policy_arn=pulumi.Output.concat("arn:", partition, ":iam::aws:policy/", policy),
                    opts=child,
                )
                for resource_name, policy in policies.items()
            ]
            return role, attachments

        self.egress: list[pulumi.Resource] = []
        subnet_ids = (
            self._network(cname, child, invoke) if s.network.create else list(s.network.subnet_ids)
        )

        # --- control plane --------------------------------------------------------------
        cluster_role, cluster_policies = service_role(
            "cluster", "eks.amazonaws.com", {"cluster-policy": "AmazonEKSClusterPolicy"}
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
            retention_in_days=90,
            opts=child,
        )
        self.cluster = aws.eks.Cluster(
            "cluster",
            name=cname,
            role_arn=cluster_role.arn,
            version=s.kubernetes_version or None,
            vpc_config={
                "subnet_ids": subnet_ids,
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

        admin_policies = self._admins(s, partition, child, invoke)

        # --- nodes ----------------------------------------------------------------------
        node_role, node_policies = service_role(
            "node",
            "ec2.amazonaws.com",
            {
                f"node-{policy}": policy
                for policy in (
                    "AmazonEKSWorkerNodePolicy",
                    "AmazonEKS_CNI_Policy",
                    "AmazonEC2ContainerRegistryReadOnly",
                )
            },
            tag_session=False,
        )
        np = s.node_pool
        ami = ami_type(np.machine_type)
        release = aws.ssm.get_parameter_output(
            name=self.version.apply(lambda v: ami_release_parameter(v, ami)), opts=invoke
        ).value
        self.node_group = aws.eks.NodeGroup(
            "node-group",
            cluster_name=self.cluster.name,
            # No node_group_name: the provider picks a unique one, so a change that replaces
            # the group (instance type, disk, spot) creates the new group before deleting the
            # old, with no name collision.
            node_role_arn=node_role.arn,
            subnet_ids=subnet_ids,
            version=self.version,
            release_version=release,
            instance_types=[np.machine_type],
            capacity_type="SPOT" if np.spot else "ON_DEMAND",
            ami_type=ami,
            disk_size=np.disk_size_gb,
            scaling_config={
                "min_size": np.min_size,
                "max_size": np.max_size,
                "desired_size": np.desired_size,
            },
            # A version or AMI update replaces one node at a time, draining it first.
            update_config={"max_unavailable": 1},
            labels={"pganalytics.io/pool": "default"},
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    # Nodes join only once their egress (NAT, routes) exists.
                    depends_on=[*node_policies, *self.egress],
                    # The Cluster Autoscaler moves desiredSize; a preview must not fight it.
                    ignore_changes=["scalingConfig.desiredSize"],
                ),
            ),
        )

        # --- managed addons, after the nodes --------------------------------------------
        after_nodes = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[self.node_group])
        )
        self.addons: dict[str, aws.eks.Addon] = {}
        for addon, resource_name in MANAGED_ADDONS.items():
            self.addons[addon] = self._addon(addon, invoke, after_nodes, resource_name)
        # Other components (backups) bind their service accounts through Pod Identity too.
        self.pod_identity_agent = pod_identity_agent = self.addons["eks-pod-identity-agent"]

        ebs_role, ebs_policies = service_role(
            "ebs-csi",
            "pods.eks.amazonaws.com",
            {"ebs-csi-policy": "service-role/AmazonEBSCSIDriverPolicy"},
        )
        self.ebs_csi = self._addon(
            "aws-ebs-csi-driver",
            invoke,
            pulumi.ResourceOptions.merge(
                after_nodes, pulumi.ResourceOptions(depends_on=[pod_identity_agent, *ebs_policies])
            ),
            resource_name="ebs-csi-driver",
            pod_identity_associations=[
                {"role_arn": ebs_role.arn, "service_account": "ebs-csi-controller-sa"}
            ],
        )

        # --- Kubernetes access ------------------------------------------------------------
        self.cluster_name = self.cluster.name
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority.data
            ).apply(lambda a: eks_kubeconfig(a[0], a[1], a[2], s.region))
        )
        self.provider = k8s_provider(self, self.kubeconfig, cname, depends_on=admin_policies)

        self.autoscaler = self._cluster_autoscaler(s, child, pod_identity_agent)

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
        self.workload_dependencies = [self.node_group, self.ebs_csi, self.addons["vpc-cni"]]
        self.snapshot_class = self._snapshot_class(invoke, after_nodes)
        self._outputs()

    # --- preview-time checks against the cloud ------------------------------------------

    def _check_version(self, version: str, invoke: pulumi.InvokeOptions) -> None:
        """The version must exist on EKS and be in standard support: the cluster's upgrade
        policy is STANDARD, under which EKS would upgrade an extended-support version itself."""
        found = cloud_lookup(
            "the EKS versions",
            lambda: aws.eks.get_cluster_versions(include_all=True, opts=invoke),
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

    # --- access -----------------------------------------------------------------------

    def _admins(self, s, partition, child, invoke) -> list[pulumi.Resource]:
        """Cluster admins from `clusterAdmins.aws`, one access entry each, named after the
        principal (stable whoever runs `up`). With no admins configured, the identity that
        first creates the entry keeps it: later runs by another identity do not move it."""
        policy_arn = pulumi.Output.concat("arn:", partition, ":eks::aws:", CLUSTER_ADMIN_POLICY)
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

    # --- addons -------------------------------------------------------------------------

    def _addon(
        self,
        addon: str,
        invoke: pulumi.InvokeOptions,
        opts: pulumi.ResourceOptions,
        resource_name: str | None = None,
        **extra,
    ) -> aws.eks.Addon:
        """A managed addon at the newest version EKS publishes for the cluster's version."""
        version = aws.eks.get_addon_version_output(
            addon_name=addon, kubernetes_version=self.version, most_recent=True, opts=invoke
        ).version
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

    def _snapshot_class(
        self, invoke: pulumi.InvokeOptions, after_nodes: pulumi.ResourceOptions
    ) -> SnapshotClassSpec:
        """EBS snapshots through the EBS CSI driver. EKS ships neither the VolumeSnapshot CRDs
        nor their controller: the managed `snapshot-controller` addon installs both, only when
        the chart's volumeSnapshots are on."""
        spec = SnapshotClassSpec("ebs.csi.aws.com")
        if self.settings.chart.snapshots_enabled:
            self.snapshot_controller = self._addon(
                "snapshot-controller",
                invoke,
                pulumi.ResourceOptions.merge(
                    after_nodes, pulumi.ResourceOptions(depends_on=[self.ebs_csi])
                ),
            )
            spec.dependencies.append(self.snapshot_controller)
        return spec

    # --- autoscaling --------------------------------------------------------------------

    def _cluster_autoscaler(self, s, child, pod_identity_agent) -> k8s.helm.v3.Release:
        """The Cluster Autoscaler scales the managed node group between nodePool.minSize and
        nodePool.maxSize (the group's own bounds), with AWS access through Pod Identity."""
        role = aws.iam.Role(
            "autoscaler-role",
            assume_role_policy=_assume_role("pods.eks.amazonaws.com", tag_session=True),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            "autoscaler-policy", role=role.id, policy=autoscaler_policy(s.cluster_name), opts=child
        )
        association = aws.eks.PodIdentityAssociation(
            "autoscaler-identity",
            cluster_name=self.cluster.name,
            namespace="kube-system",
            service_account=CLUSTER_AUTOSCALER_SA,
            role_arn=role.arn,
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[pod_identity_agent])
            ),
        )
        chart, chart_version, repo = CLUSTER_AUTOSCALER_CHART
        return k8s.helm.v3.Release(
            "cluster-autoscaler",
            name="cluster-autoscaler",
            chart=chart,
            version=chart_version,
            repository_opts={"repo": repo},
            namespace="kube-system",
            values={
                "cloudProvider": "aws",
                "awsRegion": s.region,
                "autoDiscovery": {"clusterName": s.cluster_name},
                # The autoscaler's minor version must match the cluster's.
                "image": {"tag": self.version.apply(lambda v: f"v{v}.0")},
                "rbac": {"serviceAccount": {"create": True, "name": CLUSTER_AUTOSCALER_SA}},
                "extraArgs": {
                    "balance-similar-node-groups": True,
                    "expander": "least-waste",
                    "skip-nodes-with-local-storage": False,
                },
            },
            atomic=True,
            cleanup_on_fail=True,
            timeout=600,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=self.provider,
                depends_on=[association, policy, self.node_group],
            ),
        )

    def _network(self, cname: str, child, invoke) -> list[pulumi.Output[str]]:
        """A VPC over `zoneCount` zones: public subnets (load balancers, NAT) and private
        node subnets whose egress goes through NAT."""
        s = self.settings
        n = s.network.zone_count
        base = ipaddress.ip_network(s.network.cidr)
        blocks = list(base.subnets(new_prefix=base.prefixlen + 4))
        zones = self._zones(n, invoke)

        vpc = aws.ec2.Vpc(
            "vpc",
            cidr_block=s.network.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": cname},
            opts=child,
        )
        igw = aws.ec2.InternetGateway("igw", vpc_id=vpc.id, tags={"Name": cname}, opts=child)
        public_rt = aws.ec2.RouteTable(
            "public-rt",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags={"Name": f"{cname}-public"},
            opts=child,
        )
        public, private = [], []
        for i in range(n):
            zone = zones[i]
            pub = aws.ec2.Subnet(
                f"public-{i}",
                vpc_id=vpc.id,
                cidr_block=str(blocks[8 + i]),
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{cname}-public-{i}", "kubernetes.io/role/elb": "1"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"public-{i}", subnet_id=pub.id, route_table_id=public_rt.id, opts=child
            )
            priv = aws.ec2.Subnet(
                f"private-{i}",
                vpc_id=vpc.id,
                cidr_block=str(blocks[i]),
                availability_zone=zone,
                tags={"Name": f"{cname}-private-{i}", "kubernetes.io/role/internal-elb": "1"},
                opts=child,
            )
            public.append(pub)
            private.append(priv)

        # One NAT gateway (cheap) or one per zone (a zone outage keeps the others' egress).
        nat_count = n if s.network.nat_gateway == "perZone" else 1
        nats = []
        for i in range(nat_count):
            eip = aws.ec2.Eip(f"nat-{i}", domain="vpc", opts=child)
            nats.append(
                aws.ec2.NatGateway(
                    f"nat-{i}",
                    allocation_id=eip.id,
                    subnet_id=public[i].id,
                    tags={"Name": f"{cname}-nat-{i}"},
                    opts=pulumi.ResourceOptions.merge(
                        child, pulumi.ResourceOptions(depends_on=[igw])
                    ),
                )
            )
        for i, priv in enumerate(private):
            rt = aws.ec2.RouteTable(
                f"private-rt-{i}",
                vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nats[i % nat_count].id}],
                tags={"Name": f"{cname}-private-{i}"},
                opts=child,
            )
            self.egress.append(
                aws.ec2.RouteTableAssociation(
                    f"private-{i}", subnet_id=priv.id, route_table_id=rt.id, opts=child
                )
            )
        self.egress.extend(nats)
        self.vpc = vpc
        return [p.id for p in private]

    def _zones(self, count: int, invoke: pulumi.InvokeOptions) -> list[str]:
        """`count` distinct zones where EKS can run its control plane: standard zones of the
        region (no Local or Wavelength zones), without the zone ids EKS does not support."""
        found = cloud_lookup(
            f"the availability zones of {self.settings.region}",
            lambda: aws.get_availability_zones(
                state="available",
                exclude_zone_ids=list(CONTROL_PLANE_EXCLUDED_ZONE_IDS),
                filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
                opts=invoke,
            ),
            AWS_CREDENTIALS_HINT,
        )
        names = sorted(found.names or [])
        if len(names) < count:
            raise ConfigError(
                [
                    f"pganalytics:network.zoneCount {count} exceeds the {len(names)} zones of "
                    f"{self.settings.region} where EKS can run ({', '.join(names)}); fix: "
                    f"pulumi config set --path pganalytics:network.zoneCount {max(2, len(names))}"
                ],
                self.settings.stack,
            )
        return names[:count]
