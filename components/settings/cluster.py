"""The cluster's config objects: node pool, network, API endpoint, per-cloud options."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, ValidationInfo, model_validator
from pydantic import field_validator as check
from pydantic.alias_generators import to_camel, to_snake

from components.settings.base import (
    CIDR_CHOICES,
    EKS_LOG_TYPES,
    MASTER_CIDRS,
    MY_IP,
    Cidr,
    Cloud,
    Flag,
    Model,
    Size,
    Text,
    cloud_of,
    ctx,
    reserved_ranges,
)
from components.settings.checks import (
    EMAIL,
    GCP_LINK,
    GCP_NAME,
    NAMESPACE,
    PRIVATE_RANGES,
    RFC1918,
    Problems,
    fail,
    free_range,
    network,
    overlaps,
)

# CloudWatch and Log Analytics both accept these retentions.
LOG_RETENTION_DAYS = (30, 60, 90, 120, 180, 365)
# The EKS managed add-ons the program installs (cluster.addonVersions keys).
EKS_ADDONS = (
    "vpc-cni",
    "kube-proxy",
    "coredns",
    "eks-pod-identity-agent",
    "aws-ebs-csi-driver",
    "snapshot-controller",
)
# GKE machine families whose boot and data disks can only be Hyperdisk, and those that also
# take it (Compute Engine, "Machine series comparison": supported disk types per series).
GKE_HYPERDISK_ONLY = ("n4", "n4d", "c4", "c4a", "c4d", "x4", "m4", "a4", "a4x", "h4d")
GKE_HYPERDISK_ALSO = ("c3", "c3d", "m3", "a3", "z3", "h3", "m1", "m2", "n2", "n2d", "t2d")


def gke_family(machine_type: str) -> str:
    """n4 of n4-standard-8, c4a of c4a-highmem-4."""
    return machine_type.split("-", 1)[0]


class NodePool(Model):
    """The workload node pool: EKS managed node groups (one per zone), a GKE node pool, an AKS
    user pool."""

    machine_type: Text = ""
    """Instance type in the cloud's naming; empty: m6i.xlarge (aws), e2-standard-4 (gcp),
    Standard_D4s_v5 (azure). Graviton types (m7g.large) get the ARM image on EKS; GKE families
    that only take Hyperdisk (n4, c4, c4a, c4d) get a hyperdisk-balanced boot disk."""
    min_size: Size = 1
    """Lower autoscaling bound of the whole pool, all zones together (≤ maxSize). EKS splits
    it over its per-zone node groups. Raising it grows the live pool to it."""
    max_size: Size = 3
    """Upper autoscaling bound of the whole pool, all zones together: the most nodes the pool
    can cost. EKS splits it over its per-zone node groups (at least one per zone), GKE and AKS
    bound the pool's total."""
    desired_size: Size = 2
    """Size of a pool when it is created, within the bounds. Afterwards the autoscaler owns
    the live size: an update keeps it, moved inside new bounds."""
    spot: Flag = False
    """Spot (EKS, AKS) or spot / preemptible (GKE) capacity."""
    disk_size_gb: int = Field(50, ge=20, le=2048)
    """Node boot disk in GB."""
    extra_machine_types: list[Text] = Field(default_factory=list)
    """EKS: more instance types of machineType's size for the node groups, so a shortage of
    one type does not stop scaling. Empty with spot: three sibling families of the same size
    (m6i.large: m6a.large, m5.large, m5a.large)."""

    @check("extra_machine_types")
    def _extra_types(cls, value: list[str], info: ValidationInfo) -> list[str]:
        cloud, found = cloud_of(info), Problems()
        if value and ctx(info, "target") in ("gcp", "azure"):
            fix = f"pulumi config rm --path {NAMESPACE}:nodePool.extraMachineTypes"
            fail("is used on aws only (EKS node groups)", fix=fix)
        for i, kind in enumerate(value):
            if cloud and not re.fullmatch(cloud.machine, kind):
                found.add(f"[{i}]", f"is not an AWS instance type (got {kind!r})", "m6a.large")
            elif kind in value[:i]:
                found.add(f"[{i}]", f"repeats {kind!r}")
        found.raise_any()
        return value

    @check("machine_type")
    def _machine_type(cls, value: str, info: ValidationInfo) -> str:
        cloud = cloud_of(info)
        if cloud and value and not re.fullmatch(cloud.machine, value):
            example = cloud.machine_default
            fail(f"is not a {cloud.name} machine type (got {value!r}, e.g. {example})", example)
        return value or (cloud.machine_default if cloud else "")

    @model_validator(mode="after")
    def _bounds(self) -> NodePool:
        lo, hi, want = self.min_size, self.max_size, self.desired_size
        if lo > hi:
            fail(f"must be ≤ maxSize (got {lo} > {hi})", hi, key="minSize")
        if not lo <= want <= hi:
            message = f"must be between minSize and maxSize (got {want}, bounds {lo}..{hi})"
            fail(message, max(lo, min(want, hi)), key="desiredSize")
        return self


class Network(Model):
    """The VPC / VNet: created by the program (create: true) or an existing one."""

    create: Flag = True
    """Create the network; false uses the existing one named by the fields below."""
    cidr: Cidr = "10.0.0.0/16"
    """VPC / VNet range: private, /20 or larger (AWS /16 to /20); EKS carves its subnets from it."""
    pod_cidr: Cidr = "10.64.0.0/14"
    """GKE pods secondary range, AKS overlay pod range; overlaps none of the other ranges."""
    service_cidr: Cidr = "10.96.0.0/16"
    """GKE services secondary range, AKS service range."""
    zone_count: int = Field(3, ge=2, le=6)
    """Availability zones of the nodes: EKS subnets and node groups (one per zone), AKS node
    pool zones 1..zoneCount (at most 3)."""
    nat_gateway: Literal["single", "perZone"] = "single"
    """EKS: one NAT gateway, or one per zone (egress survives a zone outage)."""
    vpc_id: Text = ""
    """Existing GCP network: VPC name or self-link."""
    subnet_ids: list[Text] = Field(default_factory=list)
    """Existing network: AWS ≥ 2 private subnet ids in different zones, GCP one subnetwork
    (name or self-link), Azure one subnet resource id."""
    pods_range_name: Text = ""
    """Existing GCP subnetwork: name of its pods secondary range."""
    services_range_name: Text = ""
    """Existing GCP subnetwork: name of its services secondary range."""

    @check("zone_count")
    def _zones(cls, value: int, info: ValidationInfo) -> int:
        if ctx(info, "target") == "azure" and value > 3:
            fail(f"must be at most 3 on azure (Azure zones are 1, 2 and 3; got {value})", 3)
        return value

    @check("cidr", "pod_cidr", "service_cidr")
    def _range(cls, value: str, info: ValidationInfo) -> str:
        cloud, net = cloud_of(info), network(value)
        choices = CIDR_CHOICES[to_camel(info.field_name)]
        if cloud and not any(net.subnet_of(p) for p in PRIVATE_RANGES):
            fail(f"must be a private range (RFC 1918 or 100.64.0.0/10; got {value})", choices[0])
        reserved = reserved_ranges(info)
        hit = overlaps(net, reserved)
        if hit:
            why = " for the control plane (cluster.masterCidr)" if hit in MASTER_CIDRS else ""
            message = f"overlaps {hit}, which {cloud.name} clusters reserve{why} (got {value})"
            fail(message, free_range(choices, reserved))
        return value

    @model_validator(mode="after")
    def _layout(self, info: ValidationInfo) -> Network:
        found, cloud = Problems(), cloud_of(info)
        reserved = reserved_ranges(info)
        nets = {"cidr": self.cidr, "podCidr": self.pod_cidr, "serviceCidr": self.service_cidr}
        for a, b in (("cidr", "podCidr"), ("cidr", "serviceCidr"), ("podCidr", "serviceCidr")):
            if overlaps(network(nets[b]), [nets[a]]):
                taken = [v for k, v in nets.items() if k != b] + list(reserved)
                fix = free_range(CIDR_CHOICES[b], taken)
                found.add(b, f"overlaps network.{a} ({nets[b]} and {nets[a]})", fix)
        prefix = network(self.cidr).prefixlen
        if cloud and self.create and prefix > 20:
            why = f"is too small for the cluster's subnets (got {self.cidr}; use /20 or larger)"
            found.add("cidr", why, "10.0.0.0/16")
        if cloud and cloud.name == "AWS" and self.create and prefix < 16:
            why = f"is larger than an AWS VPC may be (/16 to /28; got {self.cidr})"
            found.add("cidr", why, "10.0.0.0/16")
        if cloud and not self.create:
            self._existing(cloud, found)
        found.raise_any()
        return self

    def _existing(self, cloud: Cloud, found: Problems) -> None:
        count, pattern, example = cloud.subnets
        ids, what = self.subnet_ids, f"a valid, distinct {cloud.name} subnet"
        if count > 1:  # an example id that is not taken yet
            example = next(e for e in (example[:-1] + c for c in "0123456789") if e not in ids)
        if len(ids) < count or (count == 1 and len(ids) > 1):
            need = "at least two private subnets in different zones" if count > 1 else "one subnet"
            why = f"needs {need} when network.create is false (got {len(ids)})"
            found.add("subnetIds", why, example, fix_key=f"subnetIds[{min(len(ids), count - 1)}]")
        for i, sid in enumerate(ids):
            if not re.fullmatch(pattern, sid) or sid in ids[:i]:
                found.add(f"subnetIds[{i}]", f"is not {what} (got {sid!r})", example)
        gcp = {"vpcId": "my-vpc", "podsRangeName": "pods", "servicesRangeName": "services"}
        for field, example in gcp.items() if cloud.name == "GCP" else ():
            value = getattr(self, to_snake(field))
            link = f"|{GCP_LINK}global/networks/{GCP_NAME}" if field == "vpcId" else ""
            if not re.fullmatch(GCP_NAME + link, value):
                why = f"is not a GCP name (got {value!r})" if value else "is required on gcp"
                found.add(field, f"{why} when network.create is false", example)


# The public-endpoint guard (Endpoint._reachable): without the acknowledgement, no public range
# shorter than /8 and no set of ranges covering more than half of the IPv4 internet, so the
# whole internet cannot be let in by halves (0.0.0.0/1 + 128.0.0.0/1) or quarters.
MIN_PUBLIC_PREFIX = 8
IPV4_ADDRESSES = 2**32


def _public(net: ipaddress.IPv4Network) -> bool:
    """Not inside a private range (RFC 1918, 100.64.0.0/10): reachable from the internet."""
    return not any(net.subnet_of(p) for p in PRIVATE_RANGES)


def _share(addresses: int) -> str:
    return f"{addresses / IPV4_ADDRESSES:.0%}"


class Endpoint(Model):
    """Who reaches the Kubernetes API endpoint of a cloud cluster."""

    public_access: Flag = True
    """A public API endpoint; false makes it private (EKS private-only, GKE private endpoint,
    AKS private cluster): then run `pulumi up` from inside the network."""
    public_cidrs: list[Cidr] = Field(default_factory=list)
    """IPv4 ranges allowed to reach the public endpoint (EKS public access CIDRs, GKE master
    authorized networks, AKS authorized IP ranges): your VPN, office and CI egress. Required
    while publicAccess is true on a cloud: empty would open the API to the internet."""
    acknowledge_public_internet: Flag = False
    """Allows publicCidrs that open the API to the internet at large: 0.0.0.0/0, a public
    range shorter than /8, or ranges that together cover more than half of the IPv4 internet
    (a throw-away cluster); without it such a stack fails before any resource is touched."""
    private_access: Flag = True
    """EKS: the endpoint is also reachable from inside the VPC (required without publicAccess)."""
    private_cidrs: list[Cidr] = Field(default_factory=list)
    """Private ranges that run `pulumi up` and kubectl against the private endpoint: a CI
    runner subnet, a VPN range, a peered network. EKS: HTTPS (443) into the cluster security
    group; GKE: master authorized networks. AKS has no address filter on a private API: it
    answers whatever routes to it, so azure refuses this key. Required on aws and gcp while
    publicAccess is false."""

    @check("private_cidrs")
    def _private_ranges(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if value and ctx(info, "target") == "azure":
            # Silently ignored, it would read as a restriction that does not exist.
            why = "is not used on azure: a private AKS API server has no address filter and "
            why += "answers whatever network routes to it (peering, VPN)"
            fail(why, fix=f"pulumi config rm --path {NAMESPACE}:endpoint.privateCidrs")
        found = Problems()
        for i, cidr in enumerate(value):
            if not any(network(cidr).subnet_of(p) for p in PRIVATE_RANGES):
                why = f"must be a private range (RFC 1918 or 100.64.0.0/10; got {cidr}): a "
                why += "public address reaches the API through publicCidrs"
                found.add(f"[{i}]", why, "10.0.0.0/8")
        found.raise_any()
        return value

    @model_validator(mode="after")
    def _reachable(self, info: ValidationInfo) -> Endpoint:
        if not self.public_access and not self.private_access:
            why = "must be true when endpoint.publicAccess is false (the API would be unreachable)"
            fail(why, True, key="privateAccess")
        private = ctx(info, "target") in ("aws", "gcp") and not self.public_access
        if private and not self.private_cidrs:
            why = "must list the networks that deploy (a CI runner subnet, a VPN range) "
            why += "while publicAccess is false: nothing else reaches the private endpoint"
            fix = f"pulumi config set --path '{NAMESPACE}:endpoint.privateCidrs[0]' "
            fix += "<runner or VPN range, e.g. 10.20.0.0/16>"
            fail(why, key="privateCidrs", fix=fix)
        if not cloud_of(info) or not self.public_access:
            return self
        mine = f"pulumi config set --path '{NAMESPACE}:endpoint.publicCidrs[%d]' {MY_IP}"
        if not self.public_cidrs:
            why = "must list who may reach the public API endpoint (empty means the whole internet)"
            fail(why, key="publicCidrs", fix=mine % 0)
        if self.acknowledge_public_internet:
            return self
        ack = f"(or, deliberately, pulumi config set --path {NAMESPACE}:"
        ack += "endpoint.acknowledgePublicInternet true)"
        instead = "list your VPN, office and CI egress ranges instead"
        nets = [network(c) for c in self.public_cidrs]
        wide = [i for i, n in enumerate(nets) if n.prefixlen < MIN_PUBLIC_PREFIX and _public(n)]
        if wide:
            i, n = wide[0], nets[wide[0]]
            reach = (
                "the whole internet"
                if n.prefixlen == 0
                else f"{_share(n.num_addresses)} of the IPv4 internet (a public range shorter "
                f"than /{MIN_PUBLIC_PREFIX})"
            )
            why = f"opens the Kubernetes API to {reach} ({self.public_cidrs[i]}); {instead}"
            fail(why, key=f"publicCidrs[{i}]", fix=f"{mine % i} {ack}")
        covered = sum(n.num_addresses for n in ipaddress.collapse_addresses(filter(_public, nets)))
        if covered > IPV4_ADDRESSES // 2:
            why = f"together open the Kubernetes API to {_share(covered)} of the IPv4 internet; "
            fail(why + instead, key="publicCidrs", fix=f"{mine % 0} {ack}")
        return self


class Cluster(Model):
    """Per-cloud cluster options."""

    private_nodes: Flag = True
    """GKE: nodes without public IPs, egress through Cloud NAT."""
    zonal: Flag = False
    """GKE: a zonal cluster (cheaper, dev) instead of a regional one."""
    zone: Text = ""
    """GKE: the zone of a zonal cluster; empty: <region>-b."""
    release_channel: Literal["RAPID", "REGULAR", "STABLE", "EXTENDED"] = "REGULAR"
    """GKE release channel."""
    control_plane_logs: list[Literal[EKS_LOG_TYPES]] = Field(
        default_factory=lambda: [*EKS_LOG_TYPES]
    )
    """EKS control-plane log types sent to CloudWatch (kept 90 days)."""
    tier: Literal["free", "standard"] = "standard"
    """AKS: free, or standard (uptime SLA)."""
    master_cidr: Cidr = MASTER_CIDRS[0]
    """GKE: the private control plane's range, an RFC 1918 /28 that overlaps none of the
    network ranges; fixed when the cluster is created."""
    log_retention_days: int = 90
    """Days the control-plane logs are kept: EKS CloudWatch log group, AKS Log Analytics
    workspace (one of 30, 60, 90, 120, 180, 365)."""
    node_image_version: Text = ""
    """EKS: the AMI release of the nodes, e.g. 1.34.2-20260115. Empty: the release this stack
    runs (recorded at the last `up`); on a first deploy or a kubernetesVersion bump, the one
    SSM recommends. Setting a newer release rolls the nodes onto it."""
    addon_versions: dict[Text, Text] = Field(default_factory=dict)
    """EKS: add-on name (vpc-cni, kube-proxy, coredns, eks-pod-identity-agent,
    aws-ebs-csi-driver, snapshot-controller) -> version. An add-on not listed keeps the version
    this stack runs; on a first deploy or a kubernetesVersion bump it gets the newest for the
    cluster's version."""
    rbac_security_group: Text = ""
    """GKE: the gke-security-groups@<your domain> group of Google Groups for RBAC; required
    when clusterAdmins.gcp lists a group."""
    defender: Flag = False
    """AKS: Microsoft Defender for Containers' sensor (billed per core), reporting to the
    cluster's Log Analytics workspace."""

    @check("log_retention_days")
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            near = min(LOG_RETENTION_DAYS, key=lambda d: abs(d - value))
            choices = ", ".join(map(str, LOG_RETENTION_DAYS))
            fail(f"must be one of {choices} (got {value})", near)
        return value

    @check("node_image_version")
    def _node_image(cls, value: str) -> str:
        if value and not re.fullmatch(r"1\.[0-9]{2}\.[0-9]+-[0-9]{8}", value):
            fix = f"pulumi config rm --path {NAMESPACE}:cluster.nodeImageVersion (the release "
            fix += "recorded at the last up)"
            fail(f"is not an EKS AMI release such as 1.34.2-20260115 (got {value!r})", fix=fix)
        return value

    @check("addon_versions")
    def _addons(cls, value: dict[str, str]) -> dict[str, str]:
        found = Problems()
        for name, version in value.items():
            path = f"{NAMESPACE}:cluster.addonVersions.{name}"
            if name not in EKS_ADDONS:
                why = f"is not an add-on the program manages ({', '.join(EKS_ADDONS)})"
                found.add(name, why, fix=f"pulumi config rm --path {path}")
            elif not re.fullmatch(r"v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+", version):
                why = f"is not an EKS add-on version such as v1.20.1-eksbuild.1 (got {version!r})"
                found.add(name, why, fix=f"pulumi config rm --path {path}")
        found.raise_any()
        return value

    @check("rbac_security_group")
    def _security_group(cls, value: str) -> str:
        if value and not re.fullmatch(r"gke-security-groups@[^@\s]+\.[a-zA-Z]{2,}", value):
            why = f"must be gke-security-groups@<your domain> (got {value!r})"
            fail(why, "gke-security-groups@example.com")
        return value

    @check("zone")
    def _zone(cls, value: str, info: ValidationInfo) -> str:
        region, zonal = ctx(info, "region"), info.data.get("zonal")
        if ctx(info, "target") != "gcp" or not zonal or not region:
            return value
        if not re.fullmatch(re.escape(region) + r"-[a-z]", value or f"{region}-b"):
            fail(f"must be a zone of region {region} (got {value!r})", f"{region}-b")
        return value or f"{region}-b"

    @check("master_cidr")
    def _master_cidr(cls, value: str) -> str:
        net = network(value)
        if net.prefixlen != 28:
            fail(f"must be an IPv4 /28 (got {value!r})", MASTER_CIDRS[0])
        if not any(net.subnet_of(r) for r in RFC1918):
            fail(f"must be a private (RFC 1918) range (got {value!r})", MASTER_CIDRS[0])
        return value


# What a principal of each cloud looks like: pattern, what else it is, an example.
PRINCIPALS = {
    "aws": (
        r"arn:aws(-[a-z]+)*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9_+=,.@/-]{1,512}",
        "is not an IAM role or user ARN",
        "arn:aws:iam::123456789012:role/platform-admins",
    ),
    "gcp": (
        rf"(user|group|serviceAccount):{EMAIL.pattern}",
        "is not user:, group: or serviceAccount:<email>",
        "group:platform-admins@example.com",
    ),
    "azure": (
        r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}",
        "is not an Entra object id (a GUID)",
        "00000000-0000-0000-0000-000000000000",
    ),
}
# An assumed-role session (what `aws sts get-caller-identity` shows): it changes per login.
STS_SESSION = r"arn:(aws[a-z-]*):sts::([0-9]{12}):assumed-role/([A-Za-z0-9_+=,.@-]+)/.+"


class ClusterAdmins(Model):
    """Who administers the cluster, per cloud: the same principals whoever runs `pulumi up`, so
    a laptop and CI do not flip access. Validated whatever the target."""

    aws: list[Text] = Field(default_factory=list)
    """IAM role or user ARNs (arn:aws:iam::<account>:role/<name>, not an sts session ARN): one
    EKS access entry each, with AmazonEKSClusterAdminPolicy. Empty: the identity that first
    creates the cluster keeps admin access."""
    gcp: list[Text] = Field(default_factory=list)
    """user:, group: or serviceAccount:<email>: Kubernetes cluster-admin on this cluster only
    (a ClusterRoleBinding), plus roles/container.clusterViewer on the project to fetch its
    credentials. A group needs Google Groups for RBAC (cluster.rbacSecurityGroup). Empty: the
    project's IAM decides."""
    azure: list[Text] = Field(default_factory=list)
    """Entra object ids (groups, users, service principals, managed identities): Azure
    Kubernetes Service RBAC Cluster Admin on the cluster. Empty: the identity that first
    creates the cluster keeps admin access."""

    @check("aws", "gcp", "azure")
    def _principals(cls, principals: list[str], info: ValidationInfo) -> list[str]:
        pattern, what, example = PRINCIPALS[info.field_name]
        found = Problems()
        for i, principal in enumerate(principals):
            session = re.fullmatch(STS_SESSION, principal) if info.field_name == "aws" else None
            if session:
                role = "arn:{}:iam::{}:role/{}".format(*session.groups())
                why = "is a session ARN (it changes per login); use the role ARN"
                found.add(f"[{i}]", f"{why} (got {principal!r})", role)
            elif not re.fullmatch(pattern, principal):
                found.add(f"[{i}]", f"{what} (got {principal!r})", example)
            elif principal in principals[:i]:
                found.add(f"[{i}]", f"repeats {principal!r}")  # fix: remove this entry
        found.raise_any()
        return principals
