"""Typed, validated settings built from the `pganalytics:` stack configuration.

Everything the program needs from the stack is read here, once, before any resource is
registered. Every problem (unknown key, bad value, missing region, a chart override the
chart's schema rejects, ...) is collected and raised as ONE `ConfigError` that names each key
and says how to fix it, so `pulumi preview` fails cleanly instead of half-way through a graph.

The accepted keys and their defaults live in `SCHEMA` below; `Pulumi.yaml` declares the same
keys (a unit test keeps the two in step) and docs/CONFIGURATION.md explains them.
"""

from __future__ import annotations

import contextlib
import difflib
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime.config as runtime_config

NAMESPACE = "pganalytics"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHART_DIR = PROJECT_ROOT / "charts" / "pganalytics"

TARGETS = ("aws", "gcp", "azure", "existing")
CLOUD_NAMES = {"aws": "AWS", "gcp": "GCP", "azure": "Azure", "existing": "an existing cluster"}

# Fixed names: the program, the chart tests and the docs all refer to them.
RELEASE_NAME = "pganalytics"
CREDENTIALS_SECRET = f"{RELEASE_NAME}-credentials"
TRAEFIK_NAMESPACE = "traefik"
CERT_MANAGER_NAMESPACE = "cert-manager"


class ConfigError(pulumi.RunError):
    """Raised for invalid stack configuration; RunError makes Pulumi print only the message."""

    def __init__(self, problems: list[str], stack: str):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(
            f"invalid configuration for stack '{stack}' ({len(problems)} {noun}):\n{lines}"
        )


# ---------------------------------------------------------------------------------------
# Schema: key -> (kind, default). Objects nest. Kinds: str, int, bool, list, dict (free-form).
# `None` as a default means "derived per target" (see the per-target tables below).
# ---------------------------------------------------------------------------------------

SCHEMA: dict[str, Any] = {
    "target": ("str", "existing"),
    "region": ("str", ""),
    "gcpProject": ("str", ""),
    "clusterName": ("str", ""),
    "kubernetesVersion": ("str", ""),
    "protect": ("bool", False),
    "kubeconfig": ("str", ""),
    "kubeContext": ("str", ""),
    "tags": ("dict", {}),
    "nodePool": {
        "machineType": ("str", ""),
        "minSize": ("int", 1),
        "maxSize": ("int", 3),
        "desiredSize": ("int", 2),
        "spot": ("bool", False),
        "diskSizeGb": ("int", 50),
    },
    "network": {
        "create": ("bool", True),
        "cidr": ("str", "10.0.0.0/16"),
        "podCidr": ("str", "10.64.0.0/14"),
        "serviceCidr": ("str", "10.96.0.0/16"),
        "zoneCount": ("int", 3),
        "natGateway": ("str", "single"),
        "vpcId": ("str", ""),
        "subnetIds": ("list", []),
        "podsRangeName": ("str", ""),
        "servicesRangeName": ("str", ""),
    },
    "endpoint": {
        "publicAccess": ("bool", True),
        "publicCidrs": ("list", ["0.0.0.0/0"]),
        "privateAccess": ("bool", True),
    },
    "cluster": {
        "privateNodes": ("bool", True),
        "zonal": ("bool", False),
        "zone": ("str", ""),
        "releaseChannel": ("str", "REGULAR"),
        "controlPlaneLogs": (
            "list",
            ["api", "audit", "authenticator", "controllerManager", "scheduler"],
        ),
        "tier": ("str", "standard"),
    },
    "ingress": {
        "controller": ("str", "traefik"),
        "className": ("str", "traefik"),
        "controllerNamespace": ("str", TRAEFIK_NAMESPACE),
        "serviceType": ("str", "LoadBalancer"),
        "domain": ("str", ""),
        "apiHost": ("str", ""),
        "grafanaHost": ("str", ""),
        "tls": ("bool", False),
        "acmeEmail": ("str", ""),
        "acmeIssuer": ("str", "staging"),
        "installCertManager": ("bool", True),
    },
    "storage": {
        "className": ("str", None),
        "type": ("str", ""),
        "reclaimPolicy": ("str", "Delete"),
        "makeDefault": ("bool", True),
    },
    "chart": {
        "valuesFile": ("str", ""),
        "values": ("dict", {}),
        "namespace": ("str", "pganalytics"),
        "imageRegistry": ("str", ""),
        "imageTag": ("str", ""),
    },
    # --- day 2 (issue 11b): credential rotation; see _day2_problems below ------------------
    "credentials": {
        "rotation": ("dict", {}),
    },
}

# Per-target defaults for values whose sensible default depends on the cloud.
DEFAULT_MACHINE_TYPE = {"aws": "m6i.large", "gcp": "e2-standard-4", "azure": "Standard_D4s_v5"}
DEFAULT_DISK_TYPE = {"aws": "gp3", "gcp": "pd-balanced", "azure": "Premium_LRS"}
DISK_TYPES = {
    "aws": ("gp3", "gp2", "io1", "io2"),
    "gcp": ("pd-balanced", "pd-ssd", "pd-standard"),
    "azure": ("Premium_LRS", "PremiumV2_LRS", "StandardSSD_LRS", "Premium_ZRS", "StandardSSD_ZRS"),
}
# The StorageClass the program creates on a cloud target; on `existing` "" means the cluster's
# default class (the chart then leaves storageClassName unset).
DEFAULT_STORAGE_CLASS = "pganalytics-ssd"

MACHINE_TYPE_PATTERNS = {
    # m6i.large, t3.2xlarge, m7g.xlarge, m7i-flex.large
    "aws": (
        re.compile(
            r"^[a-z][a-z0-9-]*\d[a-z0-9-]*\.(nano|micro|small|medium|\d*x?large|metal(-\d+xl)?)$"
        ),
        "m6i.large",
    ),
    # e2-standard-4, n2-highmem-8, c3-standard-4-lssd, custom-4-16384
    "gcp": (re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+){1,3}$"), "e2-standard-4"),
    # Standard_D4s_v5, Standard_E8ads_v5
    "azure": (re.compile(r"^Standard_[A-Za-z0-9_]+$"), "Standard_D4s_v5"),
}
REGION_PATTERNS = {
    "aws": (re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"), "eu-west-1"),
    "gcp": (re.compile(r"^[a-z]+-[a-z]+\d+$"), "europe-west1"),
    "azure": (re.compile(r"^[a-z]+[a-z0-9]*$"), "westeurope"),
}
EKS_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$"
)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-zA-Z]{2,}$")
K8S_VERSION = re.compile(r"^1\.\d{2}(\.\d+)?$")
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?(/[a-z0-9._-]+)*$")


# ---------------------------------------------------------------------------------------
# Typed settings
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodePool:
    machine_type: str
    min_size: int
    max_size: int
    desired_size: int
    spot: bool
    disk_size_gb: int


@dataclass(frozen=True)
class Network:
    create: bool
    cidr: str
    pod_cidr: str
    service_cidr: str
    zone_count: int
    nat_gateway: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    pods_range_name: str
    services_range_name: str


@dataclass(frozen=True)
class Endpoint:
    public_access: bool
    public_cidrs: tuple[str, ...]
    private_access: bool


@dataclass(frozen=True)
class Cluster:
    private_nodes: bool
    zonal: bool
    zone: str
    release_channel: str
    control_plane_logs: tuple[str, ...]
    tier: str


@dataclass(frozen=True)
class Ingress:
    controller: str
    class_name: str
    controller_namespace: str
    service_type: str
    domain: str
    api_host: str
    grafana_host: str
    tls: bool
    acme_email: str
    acme_issuer: str
    install_cert_manager: bool

    @property
    def enabled(self) -> bool:
        return bool(self.class_name)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def cluster_issuer(self) -> str:
        return (
            {"staging": "letsencrypt-staging", "production": "letsencrypt-prod"}[self.acme_issuer]
            if self.tls
            else ""
        )


@dataclass(frozen=True)
class Storage:
    class_name: str
    type: str
    reclaim_policy: str
    make_default: bool


@dataclass(frozen=True)
class Chart:
    values_file: str
    values: dict
    namespace: str
    image_registry: str
    image_tag: str

    @property
    def path(self) -> Path:
        return CHART_DIR


@dataclass(frozen=True)
class Settings:
    stack: str
    target: str
    region: str
    gcp_project: str
    cluster_name: str
    kubernetes_version: str
    protect: bool
    kubeconfig: str = field(repr=False)
    kube_context: str
    tags: dict
    node_pool: NodePool
    network: Network
    endpoint: Endpoint
    cluster: Cluster
    ingress: Ingress
    storage: Storage
    chart: Chart
    # --- day 2 (issue 11b) ---
    # credentials.rotation: Secret key -> generation (0 = the password first generated).
    credential_rotation: dict = field(default_factory=dict)
    # Paths inside chart.values of the leaves set with `--secret` (see chart_secrets.py).
    chart_secret_paths: tuple = ()

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


# ---------------------------------------------------------------------------------------
# Reading the configuration bag
# ---------------------------------------------------------------------------------------


def read_config_bag() -> tuple[dict[str, Any], set[str], set[str]]:
    """All `pganalytics:*` config values and the set of secret keys.

    `pulumi.Config.get` only answers for keys we ask about; to reject keys we do NOT know we
    need the whole bag: the CLI passes it in PULUMI_CONFIG, the automation API and the test
    mocks through `set_all_config`.
    """
    bag: dict[str, Any] = dict(runtime_config.get_config_env())
    bag.update(runtime_config.CONFIG.get())
    secret = set(runtime_config.get_config_secret_keys_env()) | set(
        runtime_config._SECRET_KEYS.get()
    )
    prefix = f"{NAMESPACE}:"
    return (
        {k[len(prefix) :]: v for k, v in bag.items() if k.startswith(prefix)},
        {k[len(prefix) :] for k in secret if k.startswith(prefix)},
        set(bag),
    )


def _set_cmd(path: str, value: Any) -> str:
    """The `pulumi config set` command that sets `path` (dotted for nested keys)."""
    flag = " --path" if "." in path or "[" in path else ""
    shown = json.dumps(value) if not isinstance(value, str) else value
    if isinstance(value, bool):
        shown = "true" if value else "false"
    if isinstance(value, str) and (value == "" or re.search(r"[\s\"'$]", value)):
        shown = json.dumps(value)
    return f"pulumi config set{flag} {NAMESPACE}:{path} {shown}"


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, message: str, fix: str) -> None:
        self.items.append(f"{NAMESPACE}:{key} {message}; fix: {fix}")


def _suggest(name: str, known: list[str]) -> str:
    lowered = {k.lower(): k for k in known}
    if name.lower() in lowered:
        return lowered[name.lower()]
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return match[0] if match else ""


def _coerce(kind: str, raw: Any, key: str, default: Any, problems: _Problems) -> Any:
    """Converts a raw config value (string from the CLI, or already typed) to `kind`."""
    example = {"str": "value", "int": 3, "bool": True, "list": ["a"], "dict": {}}[kind]
    bad = False
    value: Any = raw
    if kind == "str":
        if isinstance(raw, (dict, list)):
            bad = True
        else:
            value = "" if raw is None else str(raw)
    elif kind == "int":
        if isinstance(raw, bool):
            bad = True
        elif isinstance(raw, int):
            value = raw
        elif isinstance(raw, float) and raw.is_integer():
            value = int(raw)
        elif isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
            value = int(raw.strip())
        else:
            bad = True
    elif kind == "bool":
        if isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            value = raw.strip().lower() == "true"
        else:
            bad = True
    elif kind in ("list", "dict"):
        want = list if kind == "list" else dict
        if isinstance(raw, str):
            try:
                raw = json.loads(raw) if raw.strip() else want()
            except json.JSONDecodeError:
                bad = True
        if not bad and not isinstance(raw, want):
            bad = True
        value = raw
    if bad:
        noun = {
            "str": "a string",
            "int": "an integer",
            "bool": "true or false",
            "list": "a list",
            "dict": "an object",
        }[kind]
        shown = raw if not isinstance(raw, str) else repr(raw)
        suggestion = default if default not in (None, "", [], {}) else example
        if kind == "bool":
            suggestion = str(raw).strip().lower() in ("yes", "y", "on", "1", "enabled", "true")
        if kind == "list":
            # Lists are set item by item; a plain `set --path key value` stores a string.
            item = (default or ["<item>"])[0]
            fix = (
                f"pulumi config rm --path {NAMESPACE}:{key} && "
                f"pulumi config set --path '{NAMESPACE}:{key}[0]' {item}"
            )
        elif kind == "dict":
            fix = (
                f"pulumi config rm --path {NAMESPACE}:{key} && "
                f"pulumi config set --path {NAMESPACE}:{key}.<name> <value>"
            )
        else:
            fix = _set_cmd(key, suggestion)
        problems.add(key, f"must be {noun} (got {shown})", fix)
        return default
    return value


def _parse_object(name: str, spec: dict, raw: Any, problems: _Problems) -> dict[str, Any]:
    """Parses an object key (e.g. nodePool) field by field, rejecting unknown fields."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            problems.add(
                name,
                f"must be an object (got {raw!r})",
                f"set its fields with {_set_cmd(name + '.' + next(iter(spec)), 'value')}",
            )
            raw = {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.add(
            name,
            f"must be an object (got {raw!r})",
            f"pulumi config rm {NAMESPACE}:{name}, then set its fields with --path",
        )
        raw = {}
    out: dict[str, Any] = {}
    for sub in raw:
        if sub not in spec:
            hint = _suggest(sub, list(spec))
            if hint:
                problems.add(
                    f"{name}.{sub}",
                    f"is not a known setting (did you mean {name}.{hint}?)",
                    f"pulumi config rm --path {NAMESPACE}:{name}.{sub} && "
                    f"pulumi config set --path {NAMESPACE}:{name}.{hint} <value>",
                )
            else:
                problems.add(
                    f"{name}.{sub}",
                    f"is not a known setting (known: {', '.join(spec)})",
                    f"pulumi config rm --path {NAMESPACE}:{name}.{sub}",
                )
    for sub, (kind, default) in spec.items():
        if sub in raw and raw[sub] is not None:
            out[sub] = _coerce(kind, raw[sub], f"{name}.{sub}", default, problems)
        else:
            out[sub] = default
    return out


def _cidr_ok(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=True)
        return True
    except ValueError:
        return False


def _cidr_fix(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        return "10.0.0.0/16"


# ---------------------------------------------------------------------------------------
# Building and validating
# ---------------------------------------------------------------------------------------


def load_settings() -> Settings:
    """Settings of the current stack, or ConfigError listing every problem."""
    config, secret_keys, all_keys = read_config_bag()
    return build_settings(pulumi.get_stack(), config, secret_keys, all_keys)


def build_settings(
    stack: str,
    config: dict[str, Any],
    secret_keys: set[str] | None = None,
    all_keys: set[str] | None = None,
) -> Settings:
    problems = _Problems()
    secret_keys = secret_keys or set()

    # Provider config the program deliberately does not read: every cloud provider is explicit.
    for foreign, ours in (
        ("aws:region", "region"),
        ("gcp:project", "gcpProject"),
        ("gcp:region", "region"),
        ("azure-native:location", "region"),
        ("kubernetes:context", "kubeContext"),
    ):
        if all_keys and foreign in all_keys:
            problems.items.append(
                f"{foreign} is ignored by this program (its providers are explicit); fix: "
                f"pulumi config rm {foreign} && pulumi config set {NAMESPACE}:{ours} <value>"
            )

    values: dict[str, Any] = {}
    for key in config:
        if key not in SCHEMA:
            head, _, field_name = key.partition(".")
            if isinstance(SCHEMA.get(head), dict) and field_name.split(".")[0] in SCHEMA[head]:
                # `pulumi config set pganalytics:nodePool.minSize 3` without --path makes a
                # key literally named "nodePool.minSize".
                problems.add(
                    key,
                    "was set without --path (it is a field of an object)",
                    f"pulumi config rm {NAMESPACE}:{key} && "
                    f"pulumi config set --path {NAMESPACE}:{key} {config[key]}",
                )
                continue
            hint = _suggest(head, list(SCHEMA))
            if hint:
                problems.add(
                    key,
                    f"is not a known setting (did you mean {NAMESPACE}:{hint}?)",
                    f"pulumi config rm {NAMESPACE}:{key} && "
                    f"pulumi config set {NAMESPACE}:{hint} <value>",
                )
            else:
                problems.add(
                    key,
                    "is not a known setting (see docs/CONFIGURATION.md)",
                    f"pulumi config rm {NAMESPACE}:{key}",
                )
    for key, spec in SCHEMA.items():
        raw = config.get(key)
        if isinstance(spec, dict):
            values[key] = _parse_object(key, spec, raw, problems)
        else:
            kind, default = spec
            values[key] = default if raw is None else _coerce(kind, raw, key, default, problems)

    target = values["target"]
    if target not in TARGETS:
        hint = _suggest(target, list(TARGETS)) or "existing"
        problems.add(
            "target",
            f"must be one of {', '.join(TARGETS)} (got {target!r})",
            _set_cmd("target", hint),
        )
        target = "existing"
    cloud = target != "existing"

    # --- region / project ---------------------------------------------------------------
    region = values["region"]
    if cloud:
        pattern, example = REGION_PATTERNS[target]
        if not region:
            problems.add("region", f"is required for target {target}", _set_cmd("region", example))
        elif not pattern.match(region):
            problems.add(
                "region",
                f"is not a {CLOUD_NAMES[target]} region (got {region!r})",
                _set_cmd("region", example),
            )
    gcp_project = values["gcpProject"]
    if target == "gcp":
        if not gcp_project:
            problems.add(
                "gcpProject", "is required for target gcp", _set_cmd("gcpProject", "my-gcp-project")
            )
        elif not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", gcp_project):
            problems.add(
                "gcpProject",
                f"is not a GCP project id (got {gcp_project!r})",
                _set_cmd("gcpProject", "my-gcp-project"),
            )

    cluster_name = values["clusterName"] or f"pganalytics-{stack}"
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,38}[a-z0-9]", cluster_name):
        problems.add(
            "clusterName",
            f"must be 2-40 lowercase letters, digits or '-' (got {cluster_name!r})",
            _set_cmd("clusterName", f"pganalytics-{stack}"),
        )

    version = values["kubernetesVersion"]
    if version and not K8S_VERSION.match(version):
        problems.add(
            "kubernetesVersion",
            f"must look like 1.34 (got {version!r})",
            _set_cmd("kubernetesVersion", "1.34"),
        )
    elif version and target == "aws" and version.count(".") > 1:
        problems.add(
            "kubernetesVersion",
            f"takes only major.minor on EKS (got {version!r})",
            _set_cmd("kubernetesVersion", ".".join(version.split(".")[:2])),
        )

    # --- node pool ------------------------------------------------------------------------
    np = values["nodePool"]
    machine = np["machineType"] or DEFAULT_MACHINE_TYPE.get(target, "")
    if cloud and np["machineType"]:
        pattern, example = MACHINE_TYPE_PATTERNS[target]
        if not pattern.match(machine):
            problems.add(
                "nodePool.machineType",
                f"is not a {CLOUD_NAMES[target]} machine type (got {machine!r}, e.g. {example})",
                _set_cmd("nodePool.machineType", example),
            )
    for sub in ("minSize", "maxSize", "desiredSize"):
        if np[sub] < 1:
            problems.add(
                f"nodePool.{sub}",
                f"must be at least 1 (got {np[sub]})",
                _set_cmd(f"nodePool.{sub}", 1),
            )
    if np["minSize"] > np["maxSize"]:
        problems.add(
            "nodePool.minSize",
            f"must be ≤ maxSize (got {np['minSize']} > {np['maxSize']})",
            _set_cmd("nodePool.minSize", np["maxSize"]),
        )
    elif not np["minSize"] <= np["desiredSize"] <= np["maxSize"]:
        problems.add(
            "nodePool.desiredSize",
            f"must be between minSize and maxSize (got {np['desiredSize']}, "
            f"bounds {np['minSize']}..{np['maxSize']})",
            _set_cmd(
                "nodePool.desiredSize", max(np["minSize"], min(np["desiredSize"], np["maxSize"]))
            ),
        )
    if not 20 <= np["diskSizeGb"] <= 2048:
        problems.add(
            "nodePool.diskSizeGb",
            f"must be between 20 and 2048 (got {np['diskSizeGb']})",
            _set_cmd("nodePool.diskSizeGb", 50),
        )

    # --- network --------------------------------------------------------------------------
    net = values["network"]
    for sub in ("cidr", "podCidr", "serviceCidr"):
        if not _cidr_ok(net[sub]):
            problems.add(
                f"network.{sub}",
                f"is not a valid CIDR (got {net[sub]!r})",
                _set_cmd(f"network.{sub}", _cidr_fix(net[sub])),
            )
    if all(_cidr_ok(net[s]) for s in ("cidr", "podCidr", "serviceCidr")):
        nets = {s: ipaddress.ip_network(net[s]) for s in ("cidr", "podCidr", "serviceCidr")}
        for a, b in (("cidr", "podCidr"), ("cidr", "serviceCidr"), ("podCidr", "serviceCidr")):
            if nets[a].overlaps(nets[b]):
                problems.add(
                    f"network.{b}",
                    f"overlaps network.{a} ({net[b]} and {net[a]})",
                    _set_cmd(f"network.{b}", SCHEMA["network"][b][1]),
                )
        if cloud and net["create"] and nets["cidr"].prefixlen > 20:
            problems.add(
                "network.cidr",
                f"is too small for the cluster's subnets (got {net['cidr']}; use /20 or larger)",
                _set_cmd("network.cidr", "10.0.0.0/16"),
            )
    if not 2 <= net["zoneCount"] <= 6:
        problems.add(
            "network.zoneCount",
            f"must be between 2 and 6 (got {net['zoneCount']})",
            _set_cmd("network.zoneCount", 3),
        )
    if net["natGateway"] not in ("single", "perZone"):
        problems.add(
            "network.natGateway",
            f"must be single or perZone (got {net['natGateway']!r})",
            _set_cmd("network.natGateway", "single"),
        )
    subnet_ids = net["subnetIds"]
    if any(not isinstance(s, str) or not s for s in subnet_ids):
        problems.add(
            "network.subnetIds",
            f"must be a list of non-empty strings (got {subnet_ids!r})",
            _set_cmd("network.subnetIds[0]", "subnet-0123456789abcdef0"),
        )
    if cloud and not net["create"]:
        if target == "aws" and len(subnet_ids) < 2:
            problems.add(
                "network.subnetIds",
                "needs at least two private subnets in different zones when "
                f"network.create is false (got {len(subnet_ids)})",
                _set_cmd("network.subnetIds[1]", "subnet-0123456789abcdef1"),
            )
        if target in ("gcp", "azure") and len(subnet_ids) != 1:
            example = (
                "my-subnet"
                if target == "gcp"
                else "/subscriptions/<sub>/resourceGroups/<rg>/providers/"
                "Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>"
            )
            problems.add(
                "network.subnetIds",
                f"needs exactly one subnet when network.create is false (got {len(subnet_ids)})",
                _set_cmd("network.subnetIds[0]", example),
            )
        if target == "gcp":
            for sub, example in (
                ("vpcId", "my-vpc"),
                ("podsRangeName", "pods"),
                ("servicesRangeName", "services"),
            ):
                if not net[sub]:
                    problems.add(
                        f"network.{sub}",
                        "is required on gcp when network.create is false",
                        _set_cmd(f"network.{sub}", example),
                    )
        if target == "aws":
            bad = [
                s
                for s in subnet_ids
                if isinstance(s, str) and not re.fullmatch(r"subnet-[0-9a-f]{8,17}", s)
            ]
            if bad:
                problems.add(
                    "network.subnetIds",
                    f"holds ids that are not AWS subnet ids: {bad}",
                    _set_cmd("network.subnetIds[0]", "subnet-0123456789abcdef0"),
                )

    # --- endpoint -------------------------------------------------------------------------
    ep = values["endpoint"]
    cidrs = ep["publicCidrs"]
    for i, c in enumerate(cidrs):
        if not isinstance(c, str) or not _cidr_ok(c):
            problems.add(
                f"endpoint.publicCidrs[{i}]",
                f"is not a valid CIDR (got {c!r})",
                _set_cmd(
                    f"endpoint.publicCidrs[{i}]",
                    _cidr_fix(str(c)) if isinstance(c, str) else "203.0.113.0/24",
                ),
            )
    if ep["publicAccess"] and not cidrs:
        problems.add(
            "endpoint.publicCidrs",
            "must list at least one CIDR while endpoint.publicAccess is true",
            _set_cmd("endpoint.publicCidrs[0]", "203.0.113.0/24"),
        )
    if not ep["publicAccess"] and not ep["privateAccess"]:
        problems.add(
            "endpoint.privateAccess",
            "must be true when endpoint.publicAccess is false "
            "(the API server would be unreachable)",
            _set_cmd("endpoint.privateAccess", True),
        )

    # --- cluster options ----------------------------------------------------------------
    cl = values["cluster"]
    if cl["releaseChannel"] not in ("RAPID", "REGULAR", "STABLE", "EXTENDED"):
        problems.add(
            "cluster.releaseChannel",
            f"must be RAPID, REGULAR, STABLE or EXTENDED (got {cl['releaseChannel']!r})",
            _set_cmd("cluster.releaseChannel", "REGULAR"),
        )
    unknown_logs = [x for x in cl["controlPlaneLogs"] if x not in EKS_LOG_TYPES]
    if unknown_logs:
        problems.add(
            "cluster.controlPlaneLogs",
            f"holds unknown log types {unknown_logs} (known: {', '.join(EKS_LOG_TYPES)})",
            _set_cmd("cluster.controlPlaneLogs", list(EKS_LOG_TYPES)),
        )
    if cl["tier"] not in ("free", "standard"):
        problems.add(
            "cluster.tier",
            f"must be free or standard (got {cl['tier']!r})",
            _set_cmd("cluster.tier", "standard"),
        )
    zone = cl["zone"]
    if target == "gcp" and cl["zonal"]:
        zone = zone or f"{region}-b"
        if region and not zone.startswith(region + "-"):
            problems.add(
                "cluster.zone",
                f"must be a zone of region {region} (got {zone!r})",
                _set_cmd("cluster.zone", f"{region}-b"),
            )
    if target == "gcp" and not ep["publicAccess"] and not cl["privateNodes"]:
        problems.add(
            "cluster.privateNodes",
            "must be true on GKE when endpoint.publicAccess is false",
            _set_cmd("cluster.privateNodes", True),
        )

    # --- ingress --------------------------------------------------------------------------
    ing = values["ingress"]
    if ing["controller"] not in ("traefik", "none"):
        hint = "none" if "none" in ing["controller"].lower() else "traefik"
        problems.add(
            "ingress.controller",
            f"must be traefik or none (got {ing['controller']!r})",
            _set_cmd("ingress.controller", hint),
        )
    class_name = ing["className"]
    if ing["controller"] == "traefik" and class_name != "traefik":
        problems.add(
            "ingress.className",
            f"must be traefik while ingress.controller is traefik (got {class_name!r})",
            _set_cmd("ingress.className", "traefik"),
        )
    if class_name and not DNS_LABEL.match(class_name) and not HOSTNAME.match(class_name):
        problems.add(
            "ingress.className",
            f"is not a valid IngressClass name (got {class_name!r})",
            _set_cmd("ingress.className", "traefik"),
        )
    if ing["serviceType"] not in ("LoadBalancer", "NodePort"):
        problems.add(
            "ingress.serviceType",
            f"must be LoadBalancer or NodePort (got {ing['serviceType']!r})",
            _set_cmd("ingress.serviceType", "LoadBalancer"),
        )
    if not DNS_LABEL.match(ing["controllerNamespace"]):
        problems.add(
            "ingress.controllerNamespace",
            f"is not a valid namespace name (got {ing['controllerNamespace']!r})",
            _set_cmd("ingress.controllerNamespace", TRAEFIK_NAMESPACE),
        )
    domain = ing["domain"].lower().rstrip(".")
    api_host = ing["apiHost"].lower() or (f"api.{domain}" if domain else "")
    grafana_host = ing["grafanaHost"].lower() or (f"grafana.{domain}" if domain else "")
    if domain and not HOSTNAME.match(domain):
        problems.add(
            "ingress.domain",
            f"is not a valid DNS domain (got {ing['domain']!r})",
            _set_cmd("ingress.domain", "pganalytics.example.com"),
        )
    for sub, host in (("apiHost", api_host), ("grafanaHost", grafana_host)):
        if ing[sub] and not HOSTNAME.match(host):
            problems.add(
                f"ingress.{sub}",
                f"is not a valid host name (got {ing[sub]!r})",
                _set_cmd(f"ingress.{sub}", f"{sub[:-4].lower()}.example.com"),
            )
    if class_name and not (api_host and grafana_host):
        problems.add(
            "ingress.domain",
            "is required while an ingress class is set (it names the API and Grafana hosts)",
            _set_cmd("ingress.domain", "pganalytics.example.com"),
        )
    if ing["acmeIssuer"] not in ("staging", "production"):
        problems.add(
            "ingress.acmeIssuer",
            f"must be staging or production (got {ing['acmeIssuer']!r})",
            _set_cmd("ingress.acmeIssuer", "staging"),
        )
    if ing["tls"]:
        if not ing["acmeEmail"]:
            problems.add(
                "ingress.acmeEmail",
                "is required when ingress.tls is true (Let's Encrypt account)",
                _set_cmd("ingress.acmeEmail", "ops@example.com"),
            )
        if not class_name:
            problems.add(
                "ingress.tls",
                "needs an ingress class (ingress.className) to solve ACME HTTP-01 challenges",
                _set_cmd("ingress.className", "traefik"),
            )
        if domain.endswith((".localhost", ".local", "nip.io", "sslip.io")) or domain == "localhost":
            problems.add(
                "ingress.domain",
                f"must be a public domain you own when ingress.tls is true (got {domain!r})",
                _set_cmd("ingress.domain", "pganalytics.example.com"),
            )
    if ing["acmeEmail"] and not EMAIL.match(ing["acmeEmail"]):
        problems.add(
            "ingress.acmeEmail",
            f"is not an e-mail address (got {ing['acmeEmail']!r})",
            _set_cmd("ingress.acmeEmail", "ops@example.com"),
        )

    # --- storage --------------------------------------------------------------------------
    st = values["storage"]
    if st["className"] is None:
        st["className"] = DEFAULT_STORAGE_CLASS if cloud else ""
    if (
        st["className"]
        and not HOSTNAME.match(st["className"])
        and not DNS_LABEL.match(st["className"])
    ):
        problems.add(
            "storage.className",
            f"is not a valid StorageClass name (got {st['className']!r})",
            _set_cmd("storage.className", DEFAULT_STORAGE_CLASS),
        )
    if cloud and not st["className"]:
        problems.add(
            "storage.className",
            f"cannot be empty on {target} (the program creates that class)",
            _set_cmd("storage.className", DEFAULT_STORAGE_CLASS),
        )
    disk_type = st["type"] or DEFAULT_DISK_TYPE.get(target, "")
    if cloud and disk_type not in DISK_TYPES[target]:
        problems.add(
            "storage.type",
            f"must be one of {', '.join(DISK_TYPES[target])} on {target} (got {disk_type!r})",
            _set_cmd("storage.type", DEFAULT_DISK_TYPE[target]),
        )
    if st["reclaimPolicy"] not in ("Delete", "Retain"):
        hint = "Retain" if st["reclaimPolicy"].lower().startswith("ret") else "Delete"
        problems.add(
            "storage.reclaimPolicy",
            f"must be Delete or Retain (got {st['reclaimPolicy']!r})",
            _set_cmd("storage.reclaimPolicy", hint),
        )

    # --- chart ----------------------------------------------------------------------------
    ch = values["chart"]
    values_file = ch["valuesFile"] or f"values-{stack}.yaml"
    if "/" in values_file or values_file.startswith(".."):
        problems.add(
            "chart.valuesFile",
            f"must be a file name inside charts/pganalytics (got {values_file!r})",
            _set_cmd("chart.valuesFile", "values-prod.yaml"),
        )
    elif not (CHART_DIR / values_file).is_file():
        have = sorted(p.name for p in CHART_DIR.glob("values-*.yaml"))
        problems.add(
            "chart.valuesFile",
            f"names {values_file}, which charts/pganalytics does not have "
            f"(have: {', '.join(have) or 'none'})",
            _set_cmd("chart.valuesFile", have[0] if have else "values-dev.yaml"),
        )
    if not DNS_LABEL.match(ch["namespace"]):
        problems.add(
            "chart.namespace",
            f"is not a valid namespace name (got {ch['namespace']!r})",
            _set_cmd("chart.namespace", "pganalytics"),
        )
    if ch["imageRegistry"] and not REGISTRY.match(ch["imageRegistry"]):
        problems.add(
            "chart.imageRegistry",
            f"is not a registry host[/path] (got {ch['imageRegistry']!r})",
            _set_cmd("chart.imageRegistry", "registry.example.com/mirror"),
        )
    if ch["imageTag"] and (not IMAGE_TAG.match(ch["imageTag"]) or ch["imageTag"] == "latest"):
        problems.add(
            "chart.imageTag",
            f"must be an exact image tag, not 'latest' (got {ch['imageTag']!r})",
            _set_cmd("chart.imageTag", "3.3.0"),
        )

    # --- misc -----------------------------------------------------------------------------
    tags = values["tags"]
    for k, v in tags.items():
        if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z0-9_.:/=+@-]{1,63}", k):
            problems.add(
                f"tags.{k}",
                f"must be a string value under a simple key (got {v!r})",
                _set_cmd(f"tags.{k}", str(v)),
            )
    kubeconfig = values["kubeconfig"]
    if kubeconfig and "kubeconfig" not in secret_keys:
        problems.add(
            "kubeconfig",
            "holds credentials and must be stored encrypted",
            f'pulumi config set --secret {NAMESPACE}:kubeconfig "$(cat ~/.kube/config)"',
        )
    if kubeconfig:
        try:
            import yaml

            parsed = yaml.safe_load(kubeconfig)
            if not isinstance(parsed, dict) or "clusters" not in parsed:
                raise ValueError("no clusters")
        except Exception:
            problems.add(
                "kubeconfig",
                "is not a kubeconfig document (no 'clusters')",
                f'pulumi config set --secret {NAMESPACE}:kubeconfig "$(cat ~/.kube/config)"',
            )

    rotation = _day2_problems(values, problems)

    if problems.items:
        # Also list what the chart schema says about the overrides, in the same error.
        if values_file and (CHART_DIR / values_file).is_file() and isinstance(ch["values"], dict):
            from components import values as chart_values

            problems.items.extend(chart_values.validate_overrides(values_file, ch["values"]))
        raise ConfigError(_scrub(problems.items, config, secret_keys), stack)

    settings = Settings(
        stack=stack,
        target=target,
        region=region,
        gcp_project=gcp_project,
        cluster_name=cluster_name,
        kubernetes_version=version,
        protect=values["protect"],
        kubeconfig=kubeconfig,
        kube_context=values["kubeContext"],
        tags=dict(tags),
        node_pool=NodePool(
            machine, np["minSize"], np["maxSize"], np["desiredSize"], np["spot"], np["diskSizeGb"]
        ),
        network=Network(
            net["create"],
            net["cidr"],
            net["podCidr"],
            net["serviceCidr"],
            net["zoneCount"],
            net["natGateway"],
            net["vpcId"],
            tuple(subnet_ids),
            net["podsRangeName"],
            net["servicesRangeName"],
        ),
        endpoint=Endpoint(ep["publicAccess"], tuple(cidrs), ep["privateAccess"]),
        cluster=Cluster(
            cl["privateNodes"],
            cl["zonal"],
            zone,
            cl["releaseChannel"],
            tuple(cl["controlPlaneLogs"]),
            cl["tier"],
        ),
        ingress=Ingress(
            ing["controller"],
            class_name,
            ing["controllerNamespace"],
            ing["serviceType"],
            domain,
            api_host,
            grafana_host,
            ing["tls"],
            ing["acmeEmail"],
            ing["acmeIssuer"],
            ing["installCertManager"],
        ),
        storage=Storage(st["className"], disk_type, st["reclaimPolicy"], st["makeDefault"]),
        chart=Chart(
            values_file, ch["values"], ch["namespace"], ch["imageRegistry"], ch["imageTag"]
        ),
        credential_rotation=rotation,
        chart_secret_paths=_chart_secret_paths(stack, secret_keys, ch["values"]),
    )

    # The chart values are known now (nothing in them waits for a cloud resource), so a
    # values override the chart's schema rejects fails here, before any resource exists.
    from components import values as chart_values

    schema_problems = chart_values.validate(settings)
    if schema_problems:
        raise ConfigError(_scrub(schema_problems, config, secret_keys), stack)
    return settings


# ---------------------------------------------------------------------------------------
# Day 2 (issue 11b): credential rotation and secret chart values
# ---------------------------------------------------------------------------------------

MAX_ROTATION = 1_000_000


def _day2_problems(values: dict[str, Any], problems: _Problems) -> dict[str, int]:
    """`credentials.rotation.<key>: N` (N >= 0): changing N regenerates that credential."""
    from components.credentials import NOT_ROTATABLE, ROTATABLE

    rotation: dict[str, int] = {}
    for key, raw in (values["credentials"]["rotation"] or {}).items():
        path = f"credentials.rotation.{key}"
        if key in NOT_ROTATABLE:
            problems.add(
                path,
                f"cannot be rotated: {NOT_ROTATABLE[key]}",
                f"pulumi config rm --path {NAMESPACE}:{path}",
            )
            continue
        if key not in ROTATABLE:
            hint = _suggest(key, list(ROTATABLE)) or ROTATABLE[0]
            problems.add(
                path,
                f"names no rotatable credential (rotatable: {', '.join(ROTATABLE)})",
                f"pulumi config rm --path {NAMESPACE}:{path} && "
                f"pulumi config set --path {NAMESPACE}:credentials.rotation.{hint} 1",
            )
            continue
        number = _coerce("int", raw, path, 0, problems) if raw is not None else 0
        if not isinstance(number, int) or isinstance(number, bool):
            continue
        if not 0 <= number <= MAX_ROTATION:
            problems.add(
                path,
                f"must be a whole number from 0 to {MAX_ROTATION} (got {number}); "
                "raise it by one to rotate",
                _set_cmd(path, 1),
            )
            continue
        rotation[key] = number
    return rotation


def _chart_secret_paths(stack: str, secret_keys: set[str], overrides: Any) -> tuple:
    if "chart" not in secret_keys or not isinstance(overrides, dict):
        return ()
    from components import chart_secrets

    return chart_secrets.secret_paths(stack, overrides)


def _scrub(problems: list[str], config: dict[str, Any], secret_keys: set[str]) -> list[str]:
    """Messages quote bad values; never quote one that was set with --secret."""
    leaves: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                collect(v)
        elif isinstance(value, list):
            for v in value:
                collect(v)
        elif value is not None and len(str(value)) >= 4:
            leaves.append(str(value))

    for key in secret_keys:
        raw = config.get(key)
        if isinstance(raw, str):
            with contextlib.suppress(json.JSONDecodeError):
                raw = json.loads(raw)
        collect(raw)
        if isinstance(config.get(key), str):
            collect(config[key])
    out = []
    for message in problems:
        for leaf in sorted(set(leaves), key=len, reverse=True):
            message = message.replace(leaf, "[secret]")
        out.append(message)
    return out
