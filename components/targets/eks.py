"""Target `aws`: an EKS cluster on its own VPC (or existing subnets), with KMS envelope
encryption of Secrets, control-plane logging, API access entries, a managed node group,
EKS Pod Identity and the EBS CSI driver behind a gp3 StorageClass.

Plain pulumi_aws resources through an explicit provider built from settings, so an ambient
`aws:region` or default provider is never used.
"""

from __future__ import annotations

import ipaddress
import json
import re

import pulumi
import pulumi_aws as aws

from components.targets.base import (
    ClusterTarget,
    StorageClassSpec,
    TargetArgs,
    exec_kubeconfig,
    k8s_provider,
    merged_tags,
)

CLUSTER_ADMIN_POLICY = "cluster-access-policy/AmazonEKSClusterAdminPolicy"


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

        # ARNs of AWS-managed policies carry the partition (aws, aws-us-gov, aws-cn).
        partition = aws.get_partition_output(opts=invoke).partition

        def managed_policy(name: str) -> pulumi.Output[str]:
            return pulumi.Output.concat("arn:", partition, ":iam::aws:policy/", name)

        subnet_ids = (
            self._network(cname, child, invoke) if s.network.create else list(s.network.subnet_ids)
        )

        # --- control plane --------------------------------------------------------------
        cluster_role = aws.iam.Role(
            "cluster-role",
            assume_role_policy=_assume_role("eks.amazonaws.com", tag_session=True),
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            "cluster-policy",
            role=cluster_role.name,
            policy_arn=managed_policy("AmazonEKSClusterPolicy"),
            opts=child,
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
                pulumi.ResourceOptions(depends_on=[cluster_policy, log_group], protect=s.protect),
            ),
        )

        # The identity running `pulumi up` administers the cluster through an access entry.
        caller = aws.get_caller_identity_output(opts=invoke)
        deployer_arn = aws.iam.get_session_context_output(arn=caller.arn, opts=invoke).issuer_arn
        access_entry = aws.eks.AccessEntry(
            "deployer-access",
            cluster_name=self.cluster.name,
            principal_arn=deployer_arn,
            type="STANDARD",
            opts=child,
        )
        admin_policy = aws.eks.AccessPolicyAssociation(
            "deployer-admin",
            cluster_name=self.cluster.name,
            principal_arn=deployer_arn,
            policy_arn=pulumi.Output.concat("arn:", partition, ":eks::aws:", CLUSTER_ADMIN_POLICY),
            access_scope={"type": "cluster"},
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[access_entry])
            ),
        )

        # --- nodes ----------------------------------------------------------------------
        node_role = aws.iam.Role(
            "node-role", assume_role_policy=_assume_role("ec2.amazonaws.com"), opts=child
        )
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"node-{policy}",
                role=node_role.name,
                policy_arn=managed_policy(policy),
                opts=child,
            )
            for policy in (
                "AmazonEKSWorkerNodePolicy",
                "AmazonEKS_CNI_Policy",
                "AmazonEC2ContainerRegistryReadOnly",
            )
        ]
        np = s.node_pool
        self.node_group = aws.eks.NodeGroup(
            "node-group",
            cluster_name=self.cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=subnet_ids,
            instance_types=[np.machine_type],
            capacity_type="SPOT" if np.spot else "ON_DEMAND",
            ami_type=ami_type(np.machine_type),
            disk_size=np.disk_size_gb,
            scaling_config={
                "min_size": np.min_size,
                "max_size": np.max_size,
                "desired_size": np.desired_size,
            },
            update_config={"max_unavailable": 1},
            labels={"pganalytics.io/pool": "default"},
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=node_policies,
                    # A cluster autoscaler moves desiredSize; a preview must not fight it.
                    ignore_changes=["scalingConfig.desiredSize"],
                ),
            ),
        )

        # --- Pod Identity and the EBS CSI driver ------------------------------------------
        pod_identity_agent = aws.eks.Addon(
            "pod-identity-agent",
            cluster_name=self.cluster.name,
            addon_name="eks-pod-identity-agent",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[self.node_group])
            ),
        )
        ebs_role = aws.iam.Role(
            "ebs-csi-role",
            assume_role_policy=_assume_role("pods.eks.amazonaws.com", tag_session=True),
            opts=child,
        )
        ebs_policy = aws.iam.RolePolicyAttachment(
            "ebs-csi-policy",
            role=ebs_role.name,
            policy_arn=managed_policy("service-role/AmazonEBSCSIDriverPolicy"),
            opts=child,
        )
        self.ebs_csi = aws.eks.Addon(
            "ebs-csi-driver",
            cluster_name=self.cluster.name,
            addon_name="aws-ebs-csi-driver",
            resolve_conflicts_on_update="OVERWRITE",
            pod_identity_associations=[
                {"role_arn": ebs_role.arn, "service_account": "ebs-csi-controller-sa"}
            ],
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[pod_identity_agent, ebs_policy, self.node_group]
                ),
            ),
        )

        # --- Kubernetes access ------------------------------------------------------------
        self.cluster_name = self.cluster.name
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority.data
            ).apply(lambda a: eks_kubeconfig(a[0], a[1], a[2], s.region))
        )
        self.provider = k8s_provider(self, self.kubeconfig, cname, depends_on=[admin_policy])

        params = {"type": s.storage.type, "encrypted": "true", "fsType": "ext4"}
        if s.storage.type in ("io1", "io2"):
            params["iopsPerGB"] = "50"
        self._create_storage_class(StorageClassSpec("ebs.csi.aws.com", params))

        # The in-tree AWS cloud provider makes a Network Load Balancer for the controller.
        self.lb_annotations = {
            "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
            # Spread connections over every zone's controller pods.
            "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": (
                "true"
            ),
        }
        self.workload_dependencies = [self.node_group, self.ebs_csi]
        self._outputs()

    def _network(self, cname: str, child, invoke) -> list[pulumi.Output[str]]:
        """A VPC over `zoneCount` zones: public subnets (load balancers, NAT) and private
        node subnets whose egress goes through NAT."""
        s = self.settings
        n = s.network.zone_count
        base = ipaddress.ip_network(s.network.cidr)
        blocks = list(base.subnets(new_prefix=base.prefixlen + 4))
        zones = aws.get_availability_zones_output(state="available", opts=invoke).names

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
            zone = zones.apply(lambda names, i=i: names[i % len(names)])
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
            aws.ec2.RouteTableAssociation(
                f"private-{i}", subnet_id=priv.id, route_table_id=rt.id, opts=child
            )
        self.vpc = vpc
        return [p.id for p in private]
