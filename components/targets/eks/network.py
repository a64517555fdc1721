"""The EKS target's VPC: public subnets (load balancers, NAT) and private node subnets over
`network.zoneCount` zones where EKS can run its control plane."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.settings import ConfigError, Settings
from components.targets.base import cloud_lookup

# Zone ids where EKS cannot place its control plane (EKS user guide, "Subnet requirements").
CONTROL_PLANE_EXCLUDED_ZONE_IDS = ("use1-az3", "usw1-az2", "cac1-az3")
AWS_CREDENTIALS_HINT = (
    "give the preview AWS credentials (aws sso login / AWS_PROFILE, or the CI role through "
    "OIDC) with eks:DescribeClusterVersions, eks:DescribeNodegroup and "
    "ec2:DescribeAvailabilityZones"
)


@dataclass
class Vpc:
    """What the cluster and its nodes need of the network."""

    # Private node subnets, one per zone, in zone order (one node group each).
    subnet_ids: list[pulumi.Input[str]]
    # What nodes need before they can join (NAT gateways, route table associations).
    egress: list[pulumi.Resource] = field(default_factory=list)
    vpc: aws.ec2.Vpc | None = None


def zones(settings: Settings, count: int, invoke: pulumi.InvokeOptions) -> list[str]:
    """`count` distinct zones where EKS can run its control plane: standard zones of the
    region (no Local or Wavelength zones), without the zone ids EKS does not support."""
    found = cloud_lookup(
        f"the availability zones of {settings.region}",
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
                f"{settings.region} where EKS can run ({', '.join(names)}); fix: "
                f"pulumi config set --path pganalytics:network.zoneCount {max(2, len(names))}"
            ],
            settings.stack,
        )
    return names[:count]


def build_vpc(
    settings: Settings, cname: str, child: pulumi.ResourceOptions, invoke: pulumi.InvokeOptions
) -> Vpc:
    """A VPC over `zoneCount` zones: public subnets (load balancers, NAT) and private node
    subnets whose egress goes through NAT. Children take `child` (the target is their parent)."""
    s = settings
    n = s.network.zone_count
    base = ipaddress.ip_network(s.network.cidr)
    blocks = list(base.subnets(new_prefix=base.prefixlen + 4))
    names = zones(s, n, invoke)

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
        zone = names[i]
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
    nats, egress = [], []
    for i in range(nat_count):
        eip = aws.ec2.Eip(f"nat-{i}", domain="vpc", opts=child)
        nats.append(
            aws.ec2.NatGateway(
                f"nat-{i}",
                allocation_id=eip.id,
                subnet_id=public[i].id,
                tags={"Name": f"{cname}-nat-{i}"},
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[igw])),
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
        egress.append(
            aws.ec2.RouteTableAssociation(
                f"private-{i}", subnet_id=priv.id, route_table_id=rt.id, opts=child
            )
        )
    egress.extend(nats)
    return Vpc([p.id for p in private], egress, vpc)
