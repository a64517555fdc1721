"""The `pganalytics:` stack configuration as typed models: one model per config object, each
field with its default and its doc (the docstring under it), each rule next to the fields it
concerns. Pulumi.yaml's `config:` block, the README table and docs/CONFIGURATION.md are
generated from these models (`make docs`).

Validators see the stack, target, region and secret keys through the validation context, so
a per-cloud rule sits in the model of the field it checks. Adding a key = one field with its
docstring in one model (plus a validator when its type does not say it all), then `make docs`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)
from pydantic import field_validator as check
from pydantic.alias_generators import to_camel, to_snake

from components.settings.checks import (
    CREDENTIAL_NAME,
    DNS_LABEL,
    EMAIL,
    GCP_LINK,
    GCP_NAME,
    HOSTNAME,
    K8S_NAME,
    NAMESPACE,
    PRIVATE_RANGES,
    URL_WITH_PASSWORD,
    Problems,
    fail,
    free_range,
    matches,
    network,
    overlaps,
    shown,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = PROJECT_ROOT / "charts" / "pganalytics"
TARGETS = ("aws", "gcp", "azure", "existing")
# Fixed names: the program, the chart tests and the docs all refer to them.
RELEASE_NAME = "pganalytics"
CREDENTIALS_SECRET = f"{RELEASE_NAME}-credentials"
TRAEFIK_NAMESPACE = "traefik"
CERT_MANAGER_NAMESPACE = "cert-manager"
DEFAULT_STORAGE_CLASS = "pganalytics-ssd"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
EKS_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
CIDR_CHOICES = {  # fixes for each network range, tried in order until one is free
    "cidr": ("10.0.0.0/16", "10.20.0.0/16", "10.40.0.0/16", "192.168.0.0/16"),
    "podCidr": ("10.64.0.0/14", "10.128.0.0/14", "100.64.0.0/14", "172.24.0.0/14"),
    "serviceCidr": ("10.96.0.0/16", "10.100.0.0/16", "172.20.0.0/16", "192.168.240.0/20"),
}
REGISTRY = r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?(/[a-z0-9._-]+)*"
MIRROR = "registry.example.com/mirror"
TAG = r"(?!latest\Z)\w[\w.-]{0,127}"  # an exact tag, never the moving "latest"
LOCAL_DOMAINS = (".localhost", ".local", ".internal", "nip.io", "sslip.io")
MY_IP = '"$(curl -fsS https://checkip.amazonaws.com)/32"'


@dataclass(frozen=True)
class Cloud:
    """What validation must know of one cloud."""

    name: str
    region: str  # pattern, then an example
    region_example: str
    machine: str  # pattern, then the default machine type
    machine_default: str
    disks: tuple[str, ...]  # disk types, the default first
    builtin_classes: tuple[str, ...]  # StorageClasses the cloud creates itself
    reserved: tuple[str, ...]  # ranges the cluster network must avoid
    subnets: tuple[int, str, str]  # existing network: how many subnets, id pattern, example


# fmt: off
CLOUDS = {
    "aws": Cloud(
        "AWS", r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d", "eu-west-1",
        r"[a-z][a-z0-9-]*\d[a-z0-9-]*\.(nano|micro|small|medium|\d*x?large|metal(-\d+xl)?)",
        "m6i.large", ("gp3", "gp2", "io1", "io2"), ("gp2", "gp3"),
        ("172.17.0.0/16",),  # the Docker bridge on nodes
        (2, r"subnet-[0-9a-f]{8,17}", "subnet-0123456789abcdef0"),
    ),
    "gcp": Cloud(
        "GCP", r"[a-z]+-[a-z]+\d+", "europe-west1",
        r"[a-z][a-z0-9]*(-[a-z0-9]+){1,3}", "e2-standard-4",
        ("pd-balanced", "pd-ssd", "pd-standard"),
        ("standard", "standard-rwo", "premium-rwo", "standard-rwx", "premium-rwx"),
        ("172.17.0.0/16", "172.16.0.32/28"),  # Docker bridge; control plane (targets/gke.py)
        (1, f"{GCP_NAME}|{GCP_LINK}regions/[a-z0-9-]+/subnetworks/{GCP_NAME}", "my-subnet"),
    ),
    "azure": Cloud(
        "Azure", r"[a-z][a-z0-9]*", "westeurope", r"Standard_[A-Za-z0-9_]+", "Standard_D4s_v5",
        ("Premium_LRS", "PremiumV2_LRS", "StandardSSD_LRS", "Premium_ZRS", "StandardSSD_ZRS"),
        ("default", "managed", "managed-csi", "managed-csi-premium", "managed-premium",
         "azurefile", "azurefile-csi", "azurefile-csi-premium", "azurefile-premium"),
        ("172.17.0.0/16", "172.30.0.0/16", "172.31.0.0/16"),  # Docker bridge; AKS reserved
        (1, r"/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}/providers/Microsoft"
            r"\.Network/virtualNetworks/[-\w.]{2,64}/subnets/[-\w.]{1,80}",
         "/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/"
         "virtualNetworks/<vnet>/subnets/<subnet>"),
    ),
}
# fmt: on
REGION_PATTERNS = {k: (re.compile(c.region), c.region_example) for k, c in CLOUDS.items()}


def _text(value: Any) -> Any:
    """Strings as the CLI gives them; numbers and booleans set with --path become strings."""
    if isinstance(value, (dict, list)):
        fail(f"must be a string (got {value!r})")
    return shown(value) if isinstance(value, (bool, int, float)) else value


def _flag(value: Any) -> bool:
    """true or false only: "yes" or "1" is more likely a mistake than a boolean."""
    word = str(value).strip().lower()
    if not isinstance(value, bool) and word not in ("true", "false"):
        fail(f"must be true or false (got {value!r})", word in ("yes", "y", "on", "1", "enabled"))
    return value if isinstance(value, bool) else word == "true"


def _cidr(value: str) -> str:
    network(value)
    return value


Text = Annotated[str, BeforeValidator(_text)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Cidr = Annotated[Text, AfterValidator(_cidr)]
Host = Annotated[Text, matches(HOSTNAME, "is not a valid DNS name", "pganalytics.example.com")]
Namespace = Annotated[Text, matches(DNS_LABEL, "is not a valid namespace name", "pganalytics")]
Size = Annotated[int, Field(ge=1, le=1000)]


def _ctx(info: ValidationInfo, name: str, default: Any = "") -> Any:
    """stack, target, region or secret_keys, as the loader put them in the context."""
    return (info.context or {}).get(name, default)


def _cloud(info: ValidationInfo) -> Cloud | None:
    """The facts of the target's cloud, or None on existing."""
    return CLOUDS.get(_ctx(info, "target"))


def _owned_namespace(value: str) -> str:
    """Why the program must not create and own this namespace, or ""."""
    if value in SYSTEM_NAMESPACES or value.startswith("kube-"):
        return "is a Kubernetes system namespace"
    return "is cert-manager's namespace" if value == CERT_MANAGER_NAMESPACE else ""


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
        use_attribute_docstrings=True,
    )


class NodePool(Model):
    """The workload node pool: an EKS managed node group, a GKE node pool, an AKS user pool."""

    machine_type: Text = ""
    """Instance type in the cloud's naming; empty: m6i.large (aws), e2-standard-4 (gcp),
    Standard_D4s_v5 (azure). Graviton types (m7g.large) get the ARM image on EKS."""
    min_size: Size = 1
    """Lower autoscaling bound of the whole pool (≤ maxSize)."""
    max_size: Size = 3
    """Upper autoscaling bound of the whole pool (GKE: the total, not per zone)."""
    desired_size: Size = 2
    """Initial size within the bounds; the autoscaler owns the live size afterwards."""
    spot: Flag = False
    """Spot (EKS, AKS) or spot / preemptible (GKE) capacity."""
    disk_size_gb: int = Field(50, ge=20, le=2048)
    """Node boot disk in GB."""

    @check("machine_type")
    def _machine_type(cls, value: str, info: ValidationInfo) -> str:
        cloud = _cloud(info)
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
    """EKS: availability zones spanned by the subnets."""
    nat_gateway: Literal["single", "perZone"] = "single"
    """EKS: one NAT gateway, or one per zone (egress survives a zone outage)."""
    vpc_id: Text = ""
    """Existing GCP network: VPC name or self-link."""
    subnet_ids: list[Text] = []
    """Existing network: AWS ≥ 2 private subnet ids in different zones, GCP one subnetwork
    (name or self-link), Azure one subnet resource id."""
    pods_range_name: Text = ""
    """Existing GCP subnetwork: name of its pods secondary range."""
    services_range_name: Text = ""
    """Existing GCP subnetwork: name of its services secondary range."""

    @check("cidr", "pod_cidr", "service_cidr")
    def _range(cls, value: str, info: ValidationInfo) -> str:
        cloud, net = _cloud(info), network(value)
        choices = CIDR_CHOICES[to_camel(info.field_name)]
        if cloud and not any(net.subnet_of(p) for p in PRIVATE_RANGES):
            fail(f"must be a private range (RFC 1918 or 100.64.0.0/10; got {value})", choices[0])
        hit = overlaps(net, cloud.reserved if cloud else ())
        if hit:
            message = f"overlaps {hit}, which {cloud.name} clusters reserve (got {value})"
            fail(message, free_range(choices, cloud.reserved))
        return value

    @model_validator(mode="after")
    def _layout(self, info: ValidationInfo) -> Network:
        found, cloud = Problems(), _cloud(info)
        reserved = cloud.reserved if cloud else ()
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


class Endpoint(Model):
    """Who reaches the Kubernetes API endpoint of a cloud cluster."""

    public_access: Flag = True
    """A public API endpoint; false makes it private (EKS private-only, GKE private endpoint,
    AKS private cluster): then run `pulumi up` from inside the network."""
    public_cidrs: list[Cidr] = []
    """IPv4 ranges allowed to reach the public endpoint (EKS public access CIDRs, GKE master
    authorized networks, AKS authorized IP ranges): your VPN, office and CI egress. Required
    while publicAccess is true on a cloud: empty would open the API to the internet."""
    acknowledge_public_internet: Flag = False
    """Allows 0.0.0.0/0 in publicCidrs, i.e. the API answering the whole internet (a
    throw-away cluster); without it such a stack fails before any resource is touched."""
    private_access: Flag = True
    """EKS: the endpoint is also reachable from inside the VPC (required without publicAccess)."""

    @model_validator(mode="after")
    def _reachable(self, info: ValidationInfo) -> Endpoint:
        if not self.public_access and not self.private_access:
            why = "must be true when endpoint.publicAccess is false (the API would be unreachable)"
            fail(why, True, key="privateAccess")
        if not _cloud(info) or not self.public_access:
            return self
        mine = f"pulumi config set --path '{NAMESPACE}:endpoint.publicCidrs[%d]' {MY_IP}"
        if not self.public_cidrs:
            why = "must list who may reach the public API endpoint (empty means the whole internet)"
            fail(why, key="publicCidrs", fix=mine % 0)
        world = [i for i, c in enumerate(self.public_cidrs) if network(c).prefixlen == 0]
        if world and not self.acknowledge_public_internet:
            i, ack = world[0], f"{NAMESPACE}:endpoint.acknowledgePublicInternet"
            why = f"opens the Kubernetes API to the whole internet ({self.public_cidrs[i]}); list "
            why += "your VPN, office and CI egress ranges instead"
            fix = f"{mine % i} (or, deliberately, pulumi config set --path {ack} true)"
            fail(why, key=f"publicCidrs[{i}]", fix=fix)
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
    control_plane_logs: list[Literal[EKS_LOG_TYPES]] = list(EKS_LOG_TYPES)  # type: ignore[valid-type]
    """EKS control-plane log types sent to CloudWatch (kept 90 days)."""
    tier: Literal["free", "standard"] = "standard"
    """AKS: free, or standard (uptime SLA)."""

    @model_validator(mode="after")
    def _zone(self, info: ValidationInfo) -> Cluster:
        region = _ctx(info, "region", "")
        if _ctx(info, "target") == "gcp" and self.zonal and region:
            self.zone = self.zone or f"{region}-b"
            if not re.fullmatch(re.escape(region) + r"-[a-z]", self.zone):
                why = f"must be a zone of region {region} (got {self.zone!r})"
                fail(why, f"{region}-b", key="zone")
        return self


class Ingress(Model):
    """The ingress controller, the hosts of the API and Grafana, and TLS."""

    controller: Literal["traefik", "none"] = "traefik"
    """traefik: the program installs Traefik; none: use a controller already in the cluster."""
    class_name: Annotated[
        Text, matches(K8S_NAME, "is not a valid IngressClass name", "traefik")
    ] = "traefik"
    """IngressClass of the chart's Ingresses; with controller none it names your controller's
    class, and empty disables the chart's Ingress."""
    controller_namespace: Namespace = TRAEFIK_NAMESPACE
    """Namespace of the controller: Traefik is installed there, and the chart's NetworkPolicy
    admits traffic from it."""
    service_type: Literal["LoadBalancer", "NodePort"] = "LoadBalancer"
    """Service type of Traefik (NodePort on a laptop cluster without a load balancer)."""
    domain: Host = ""
    """Base domain; the hosts default to api.<domain> and grafana.<domain>. Required while an
    ingress class is set."""
    api_host: Host = ""
    """Host of the API; empty: api.<domain>."""
    grafana_host: Host = ""
    """Host of Grafana; empty: grafana.<domain>."""
    tls: Flag = False
    """HTTPS with Let's Encrypt certificates from cert-manager (HTTP-01 through the class)."""
    acme_email: Annotated[Text, matches(EMAIL, "is not an e-mail address", "ops@example.com")] = ""
    """ACME account e-mail; required when tls is true."""
    acme_issuer: Literal["staging", "production"] = "staging"
    """Let's Encrypt server: ClusterIssuer letsencrypt-staging or letsencrypt-prod."""
    install_cert_manager: Flag = True
    """Install cert-manager when tls is true; false when the cluster has it already."""

    @check("domain", "api_host", "grafana_host", mode="before")
    def _lower(cls, value: Any) -> Any:
        return value.lower().rstrip(".") if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Ingress:
        found = Problems()
        if self.controller == "traefik" and self.class_name != "traefik":
            why = f"must be traefik while ingress.controller is traefik (got {self.class_name!r})"
            found.add("className", why, "traefik")
        owned = _owned_namespace(self.controller_namespace) if self.controller == "traefik" else ""
        if owned:
            why = f"{owned}; the program creates and owns Traefik's"
            found.add("controllerNamespace", why, TRAEFIK_NAMESPACE)
        self.api_host = self.api_host or (f"api.{self.domain}" if self.domain else "")
        self.grafana_host = self.grafana_host or (f"grafana.{self.domain}" if self.domain else "")
        if self.class_name and not (self.api_host and self.grafana_host):
            why = "is required while an ingress class is set (it names the API and Grafana hosts)"
            found.add("domain", why, "pganalytics.example.com")
        elif self.api_host and self.api_host == self.grafana_host:
            why = f"must differ from the API host ({self.api_host})"
            found.add("grafanaHost", why, "grafana." + self.api_host)
        if self.tls and not self.acme_email:
            why = "is required when ingress.tls is true (Let's Encrypt account)"
            found.add("acmeEmail", why, "ops@example.com")
        if self.tls and not self.class_name:
            why = "needs an ingress class (ingress.className) to solve ACME HTTP-01 challenges"
            found.add("tls", why, "traefik", fix_key="className")
        if self.tls and self.domain.endswith(LOCAL_DOMAINS):
            why = f"must be a public domain you own when ingress.tls is true (got {self.domain!r})"
            found.add("domain", why, "pganalytics.example.com")
        found.raise_any()
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.class_name)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def cluster_issuer(self) -> str:
        issuers = {"staging": "letsencrypt-staging", "production": "letsencrypt-prod"}
        return issuers[self.acme_issuer] if self.tls else ""


class Storage(Model):
    """The StorageClass of the database and Grafana volumes."""

    class_name: Annotated[Text, matches(K8S_NAME, "is not a valid name", DEFAULT_STORAGE_CLASS)] = (
        ""
    )
    """Clouds: the class the program creates (empty: pganalytics-ssd); existing: empty uses
    the cluster's default class, a name selects a class that exists there."""
    type: Text = ""
    """Disk type: aws gp3, gp2, io1, io2; gcp pd-balanced, pd-ssd, pd-standard; azure
    Premium_LRS, PremiumV2_LRS, StandardSSD_LRS, Premium_ZRS, StandardSSD_ZRS; empty: the first."""
    reclaim_policy: Literal["Delete", "Retain"] = "Delete"
    """Retain keeps the cloud disk when its claim is deleted (prod, enterprise)."""
    make_default: Flag = True
    """Annotate the class as the cluster's default."""

    @check("class_name")
    def _class(cls, value: str, info: ValidationInfo) -> str:
        cloud = _cloud(info)
        if cloud and value in cloud.builtin_classes:
            why = f"is a class {cloud.name} clusters have already; the program creates its own"
            fail(f"{why} (got {value!r})", DEFAULT_STORAGE_CLASS)
        return value or (DEFAULT_STORAGE_CLASS if cloud else "")

    @check("type")
    def _type(cls, value: str, info: ValidationInfo) -> str:
        cloud = _cloud(info)
        if cloud and (value or cloud.disks[0]) not in cloud.disks:
            why = f"must be one of {', '.join(cloud.disks)} on {_ctx(info, 'target')}"
            fail(f"{why} (got {value!r})", cloud.disks[0])
        return value or (cloud.disks[0] if cloud else "")


class Chart(Model):
    """The bundled chart: values file, overrides, namespace, images."""

    values_file: Text = ""
    """Values file inside charts/pganalytics; empty: values-<stack>.yaml."""
    values: dict[str, Any] = {}
    """Overrides merged last; the merged values must pass values.schema.json. A credential in
    an extraEnv entry must come from a Secret (valueFrom), never a literal value."""
    namespace: Namespace = "pganalytics"
    """Namespace of the release, created and owned by the program (Pod Security restricted)."""
    image_registry: Annotated[Text, matches(REGISTRY, "is not a registry host[/path]", MIRROR)] = ""
    """Registry mirror for every image (global.imageRegistry)."""
    image_tag: Annotated[
        Text, matches(TAG, "must be an exact image tag, not 'latest'", "3.3.0")
    ] = ""
    """Tag of the backend and collector images; never latest."""

    @check("values_file")
    def _values_file(cls, value: str, info: ValidationInfo) -> str:
        value = value or f"values-{_ctx(info, 'stack', 'dev')}.yaml"
        have = sorted(p.name for p in CHART_DIR.glob("values-*.yaml"))
        if not re.fullmatch(r"[\w-][\w.-]*\.ya?ml", value):
            fail(f"must be a file name inside charts/pganalytics (got {value!r})", have[0])
        if not (CHART_DIR / value).is_file():
            why = f"names {value}, which charts/pganalytics does not have (have: {', '.join(have)})"
            fail(why, have[0])
        return value

    @check("values")
    def _no_literal_credentials(cls, values: dict) -> dict:
        found = Problems()
        for path, name in _literal_credentials(values, ""):
            key, secret = f"{NAMESPACE}:chart.values.{path}", f"{RELEASE_NAME}-extra-env"
            found.add(path, f"gives {name} a literal value: a credential belongs in a Secret, not "
                      "in the pod spec (the chart's own credentials use existingSecret)",
                      fix=f"kubectl create secret generic {secret} --from-literal={name}=... && "
                      f"pulumi config rm --path {key}.value && pulumi config set --path "
                      f"{key}.valueFrom.secretKeyRef.name {secret} && pulumi config set --path "
                      f"{key}.valueFrom.secretKeyRef.key {name}")  # fmt: skip
        found.raise_any()
        return values

    @check("namespace")
    def _namespace(cls, value: str) -> str:
        if _owned_namespace(value):
            why = "the program creates the release namespace, owns it and enforces Pod Security"
            fail(f"{_owned_namespace(value)}; {why}", "pganalytics")
        return value

    @property
    def path(self) -> Path:
        return CHART_DIR


def _literal_credentials(values: Any, path: str):
    """(path, name) of each `extraEnv` entry holding a credential as a literal value."""
    for key, value in values.items() if isinstance(values, dict) else ():
        if key != "extraEnv" or not isinstance(value, list):
            yield from _literal_credentials(value, f"{path}{key}.")
            continue
        for i, env in enumerate(e for e in value if isinstance(e, dict)):
            name, literal = str(env.get("name", "")), str(env.get("value") or "")
            if literal and (
                CREDENTIAL_NAME.fullmatch(name) or URL_WITH_PASSWORD.fullmatch(literal)
            ):
                yield f"{path}{key}[{i}]", name


def _chart_min_minor() -> int:
    """The oldest Kubernetes minor the chart supports (Chart.yaml kubeVersion: >=1.N)."""
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text()) or {}
    found = re.match(r"\s*>=\s*1\.(\d+)", str(chart.get("kubeVersion", "")))
    return int(found.group(1)) if found else 0


class Settings(Model):
    """Everything the program reads from the `pganalytics:` stack configuration."""

    target: Literal["aws", "gcp", "azure", "existing"] = "existing"
    """Where the cluster comes from: aws (EKS), gcp (GKE), azure (AKS) or existing (the current
    kubeconfig context, or pganalytics:kubeconfig)."""
    region: Text = ""
    """AWS region (eu-west-1), GCP region (europe-west1) or Azure location (westeurope);
    required on the clouds, unused on existing."""
    gcp_project: Text = ""
    """GCP project id; required when the target is gcp."""
    cluster_name: Text = ""
    """Name of the cluster and prefix of its cloud resources (2-40 lowercase letters, digits,
    -); empty: pganalytics-<stack>."""
    kubernetes_version: Text = ""
    """Kubernetes minor such as 1.34: EKS and AKS version, GKE minimum master version (the
    release channel upgrades it); not older than the chart's kubeVersion; empty: the cloud's
    default."""
    protect: Flag = False
    """Protect the stateful resources (cluster, KMS key, namespace, StorageClass, credentials,
    database) from deletion and replacement; true on prod and enterprise."""
    kubeconfig: Text = Field("", repr=False)
    """Target existing: a kubeconfig document, set with --secret; empty: the ambient
    kubeconfig (KUBECONFIG or ~/.kube/config)."""
    kube_context: Text = ""
    """Target existing: the kubeconfig context to use; empty: its current context."""
    tags: dict[str, Text] = {}
    """Extra tags (AWS tags, GCP labels, Azure tags) on every cloud resource, merged with app,
    stack and managed-by."""
    node_pool: NodePool = Field(default_factory=dict)
    network: Network = Field(default_factory=dict)
    endpoint: Endpoint = Field(default_factory=dict)
    cluster: Cluster = Field(default_factory=dict)
    ingress: Ingress = Field(default_factory=dict)
    storage: Storage = Field(default_factory=dict)
    chart: Chart = Field(default_factory=dict)

    _stack: str = PrivateAttr("")

    @check("region", "gcp_project")
    def _required(cls, value: str, info: ValidationInfo) -> str:
        cloud, target = _cloud(info), _ctx(info, "target")
        if info.field_name == "region" and cloud:
            pattern, example, what = cloud.region, cloud.region_example, f"a {cloud.name} region"
        elif info.field_name == "gcp_project" and target == "gcp":
            pattern, example, what = (
                r"[a-z][a-z0-9-]{4,28}[a-z0-9]",
                "my-gcp-project",
                "a GCP project id",
            )
        else:
            return value
        if not value:
            fail(f"is required for target {target}", example)
        if not re.fullmatch(pattern, value):
            fail(f"is not {what} (got {value!r})", example)
        return value

    @check("cluster_name")
    def _cluster_name(cls, value: str, info: ValidationInfo) -> str:
        stack = re.sub(r"[^a-z0-9]+", "-", _ctx(info, "stack", "dev").lower())
        fallback = f"pganalytics-{stack.strip('-')}"[:40].rstrip("-")
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,38}[a-z0-9]", value or fallback):
            fail(f"must be 2-40 lowercase letters, digits or '-' (got {value!r})", fallback)
        return value or fallback

    @check("kubernetes_version")
    def _version(cls, value: str, info: ValidationInfo) -> str:
        found, minimum = re.fullmatch(r"1\.(\d{2})(\.\d+)?", value), _chart_min_minor()
        if value and not found:
            near = re.search(r"1\.\d{2}", value)
            fail(f"must look like 1.34 (got {value!r})", near.group(0) if near else "1.34")
        if found and int(found.group(1)) < minimum:
            fix = f"pulumi config rm {NAMESPACE}:kubernetesVersion (the cloud's default)"
            fail(f"is older than the chart supports (1.{minimum} or newer; got {value})", fix=fix)
        if found and found.group(2) and _ctx(info, "target") == "aws":
            fail(f"takes only major.minor on EKS (got {value!r})", value.rsplit(".", 1)[0])
        return value

    @check("kubeconfig")
    def _kubeconfig(cls, value: str, info: ValidationInfo) -> str:
        fix = f'pulumi config set --secret {NAMESPACE}:kubeconfig "$(cat ~/.kube/config)"'
        if value and "kubeconfig" not in _ctx(info, "secret_keys", ()):
            fail("holds credentials and must be stored encrypted", fix=fix)
        try:
            parsed = yaml.safe_load(value) if value else {"clusters": []}
        except yaml.YAMLError:
            parsed = None
        if not isinstance(parsed, dict) or "clusters" not in parsed:
            fail("is not a kubeconfig document (no 'clusters')", fix=fix)
        return value

    @check("tags")
    def _tags(cls, tags: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        found, limit = Problems(), 63 if _ctx(info, "target") == "gcp" else 256
        for key, value in tags.items():
            if not re.fullmatch(r"(?![Aa][Ww][Ss]:)[A-Za-z][\w.:/=+@-]{0,62}", key, re.A):
                why = "must be 1-63 letters, digits or _.:/=+@- starting with a letter, not aws:"
                found.add(key, why, fix=f"pulumi config rm --path {NAMESPACE}:tags.{key}")
            elif len(value) > limit:
                found.add(key, f"is longer than a tag value may be ({limit})", value[:limit])
        found.raise_any()
        return tags

    @model_validator(mode="after")
    def _across_objects(self, info: ValidationInfo) -> Settings:
        self._stack = _ctx(info, "stack")
        self.cross_problems().raise_any()
        return self

    def cross_problems(self, failed: set[str] = frozenset()) -> Problems:
        """Rules spanning keys. Pydantic runs them once every key is valid; the loader also
        runs them on a partial Settings, skipping each rule that involves a `failed` key."""
        found, ok = Problems(), failed.isdisjoint
        gke = ok(("target", "endpoint", "cluster")) and self.target == "gcp"
        if gke and not self.endpoint.public_access and not self.cluster.private_nodes:
            why = "must be true on GKE when endpoint.publicAccess is false"
            found.add("cluster.privateNodes", why, True)
        if ok(("chart", "ingress")) and self.chart.namespace == self.ingress.controller_namespace:
            fix = "pganalytics" if self.chart.namespace != "pganalytics" else "pganalytics-app"
            found.add("chart.namespace", "must differ from ingress.controllerNamespace", fix)
        if ok(("kubeconfig", "kubeContext")) and self.kube_context and self.kubeconfig:
            entries = (yaml.safe_load(self.kubeconfig) or {}).get("contexts") or []
            names = [str(c.get("name")) for c in entries if isinstance(c, dict)] or ["none"]
            if self.kube_context not in names:
                why = f"names no context of {NAMESPACE}:kubeconfig (it has: {', '.join(names)})"
                found.add("kubeContext", why, fix=f"pulumi config rm {NAMESPACE}:kubeContext")
        return found

    @property
    def stack(self) -> str:
        return self._stack

    @property
    def is_cloud(self) -> bool:
        return self.target != "existing"

    @property
    def api_url(self) -> str:
        return f"{self.ingress.scheme}://{self.ingress.api_host}" if self.ingress.api_host else ""

    @property
    def grafana_url(self) -> str:
        host = self.ingress.grafana_host
        return f"{self.ingress.scheme}://{host}" if host else ""
