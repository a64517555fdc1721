"""What every settings model shares: the field types (`Text`, `Flag`, `Cidr`, ...) that coerce
the CLI's strings and say what is wrong, the base `Model`, the program's fixed names, and the
facts about each cloud that validation needs (`CLOUDS`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import pulumi
import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo
from pydantic.alias_generators import to_camel

from components.settings.checks import (
    DNS_LABEL,
    GCP_LINK,
    GCP_NAME,
    HOSTNAME,
    fail,
    matches,
    network,
    shown,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = PROJECT_ROOT / "charts" / "pganalytics"
# pganalytics:chart.valuesFile: a file name inside the chart, or a path relative to the project
# (values/prod.yaml); never absolute, no `..` (the same file on every machine that deploys).
VALUES_FILE = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*\.ya?ml")


def project_dir() -> Path:
    """The directory of the Pulumi.yaml the engine runs, which need not be this checkout (a
    project may link to it). Outside the engine (unit tests) the SDK holds a placeholder, not a
    project: then this checkout."""
    root = pulumi.get_root_directory()
    if root and (Path(root) / "Pulumi.yaml").is_file():
        return Path(root)
    return PROJECT_ROOT


def values_file_path(name: str) -> Path:
    """Where a values file lives: a bare name (values-prod.yaml) inside charts/pganalytics, a
    path (values/prod.yaml) relative to the project, so a stack's values need no fork of the
    chart."""
    return project_dir() / name if "/" in name else CHART_DIR / name


def values_file_shown(name: str) -> str:
    """A values file as messages name it, relative to the project."""
    return name if "/" in name else f"charts/pganalytics/{name}"


# libyaml's parser when PyYAML was built with it (its wheels are): the chart's values.yaml
# parses in about 3 ms instead of 100 ms with the pure-Python one, on every preview and up.
# Same constructor (safe), so the same data.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def chart_values_file(name: str) -> dict:
    """A values file (values.yaml, values-<stack>.yaml, or one in the project), parsed; {} when
    absent or not a map. The one reader of these files, for the settings and the release
    values."""
    path = values_file_path(name) if name else None
    data = yaml.load(path.read_text(), Loader=YAML_LOADER) if path and path.is_file() else None
    return data if isinstance(data, dict) else {}


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
REGISTRY = r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9._-]+)*"
MIRROR = "registry.example.com/mirror"
TAG = r"(?!latest\Z)[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"  # an exact tag, never "latest"
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
        "AWS", r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]", "eu-west-1",
        r"[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.(nano|micro|small|medium|[0-9]*x?large|metal(-[0-9]+xl)?)",
        "m6i.xlarge", ("gp3", "gp2", "io1", "io2"), ("gp2", "gp3"),
        ("172.17.0.0/16",),  # the Docker bridge on nodes
        (2, r"subnet-[0-9a-f]{8,17}", "subnet-0123456789abcdef0"),
    ),
    "gcp": Cloud(
        "GCP", r"[a-z]+-[a-z]+[0-9]+", "europe-west1",
        r"[a-z][a-z0-9]*(-[a-z0-9]+){1,3}", "e2-standard-4",
        ("pd-balanced", "pd-ssd", "pd-standard", "hyperdisk-balanced"),
        ("standard", "standard-rwo", "premium-rwo", "standard-rwx", "premium-rwx"),
        ("172.17.0.0/16",),  # the Docker bridge; the control plane: reserved_ranges()
        (1, f"{GCP_NAME}|{GCP_LINK}regions/[a-z0-9-]+/subnetworks/{GCP_NAME}", "my-subnet"),
    ),
    "azure": Cloud(
        "Azure", r"[a-z][a-z0-9]*", "westeurope", r"Standard_[A-Za-z0-9_]+", "Standard_D4s_v5",
        ("Premium_LRS", "PremiumV2_LRS", "StandardSSD_LRS", "Premium_ZRS", "StandardSSD_ZRS"),
        ("default", "managed", "managed-csi", "managed-csi-premium", "managed-premium",
         "azurefile", "azurefile-csi", "azurefile-csi-premium", "azurefile-premium"),
        ("172.17.0.0/16", "172.30.0.0/16", "172.31.0.0/16"),  # Docker bridge; AKS reserved
        (1, r"/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-A-Za-z0-9_.()]{1,90}/providers/"
            r"Microsoft\.Network/virtualNetworks/[-A-Za-z0-9_.]{2,64}/subnets/[-A-Za-z0-9_.]{1,80}",
         "/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/"
         "virtualNetworks/<vnet>/subnets/<subnet>"),
    ),
}
# fmt: on
REGION_PATTERNS = {k: (re.compile(c.region), c.region_example) for k, c in CLOUDS.items()}


@dataclass(frozen=True)
class TagRules:
    """What a cloud accepts as the tags (GCP: labels) the program puts on each resource: how
    many, and each key's and value's length and characters. Only ASCII is accepted, so a
    look-alike letter never hides in a tag."""

    noun: str  # "tag" or "label"
    count: int  # per resource, the program's own tags included
    key: str  # pattern of a key
    key_max: int
    value_chars: str  # the characters of a value, as a regex class body
    value_max: int
    key_text: str  # a key's characters and rules, as a message says them
    value_text: str  # a value's characters
    lowercase: bool = False

    def value_problem(self, value: str) -> str:
        if len(value) > self.value_max or not re.fullmatch(f"[{self.value_chars}]*", value):
            why = f"is not a {self.noun} value this cloud accepts: 0-{self.value_max}"
            return f"{why} {self.value_text}"
        return ""

    def fixed_value(self, value: str) -> str:
        """`value` made acceptable: other characters become '-', then it is cut to length."""
        value = value.lower() if self.lowercase else value
        return re.sub(f"[^{self.value_chars}]", "-", value)[: self.value_max]


# AWS: https://docs.aws.amazon.com/tag-editor/latest/userguide/best-practices-and-strats.html
# (50 user tags, key 128 and value 256 characters; letters, digits, spaces, + - = . _ : / @;
# the aws: prefix is reserved). GCP: https://cloud.google.com/compute/docs/labeling-resources
# (64 labels, keys and values 63 characters; lowercase letters, digits, _ and -; a key starts
# with a letter). Azure: https://learn.microsoft.com/azure/azure-resource-manager/management/
# tag-resources (50 tags; names 512, on storage accounts 128, values 256 characters; no
# < > % & \ ? / in a name; names are case-insensitive).
AWS_TAG_CHARS = "A-Za-z0-9 _.:/=+@-"
TAG_RULES = {
    "aws": TagRules(
        "tag", 50, f"(?![Aa][Ww][Ss]:)[{AWS_TAG_CHARS}]+", 128, AWS_TAG_CHARS, 256,
        "letters, digits, spaces and _ . : / = + @ -, not starting with aws:",
        "letters, digits, spaces and _ . : / = + @ -",
    ),
    "gcp": TagRules(
        "label", 64, "[a-z][a-z0-9_-]*", 63, "a-z0-9_-", 63,
        "lowercase letters, digits, _ and -, starting with a letter",
        "lowercase letters, digits, _ and -", lowercase=True,
    ),
    "azure": TagRules(
        "tag", 50, "[A-Za-z0-9 _.:=+@-]+", 128, AWS_TAG_CHARS, 256,
        "letters, digits, spaces and _ . : = + @ -",
        "letters, digits, spaces and _ . : / = + @ -",
    ),
}  # fmt: skip
# The tags the program adds to every resource (targets/base.py merged_tags, backup/base.py).
PROGRAM_TAGS = ("app", "stack", "managed-by", "purpose")
# The GKE private control plane: cluster.masterCidr's default, then free /28s for its fixes.
MASTER_CIDRS = ("172.16.0.32/28", "172.16.0.48/28", "192.168.255.240/28", "10.255.255.240/28")


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


def ctx(info: ValidationInfo, name: str, default: Any = "") -> Any:
    """stack, target, region or secret_keys, as the loader put them in the context."""
    return (info.context or {}).get(name, default)


def cloud_of(info: ValidationInfo) -> Cloud | None:
    """The facts of the target's cloud, or None on existing."""
    return CLOUDS.get(ctx(info, "target"))


def reserved_ranges(info: ValidationInfo) -> tuple[str, ...]:
    """Ranges the cluster network must avoid on the target's cloud. On GKE that includes the
    control plane's range: while cluster.masterCidr is unset the network must avoid its
    default; once it is set, an overlap is reported once, on that key
    (`Settings.cross_problems`), since the key the user chose is the one to move."""
    cloud = cloud_of(info)
    if not cloud:
        return ()
    plane = cloud.name == "GCP" and not ctx(info, "master_cidr_set", False)
    return cloud.reserved + ((MASTER_CIDRS[0],) if plane else ())


def owned_namespace(value: str) -> str:
    """Why the program must not create and own this namespace, or ""."""
    if value in SYSTEM_NAMESPACES or value.startswith("kube-"):
        return "is a Kubernetes system namespace"
    return "is cert-manager's namespace" if value == CERT_MANAGER_NAMESPACE else ""


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        validate_default=True,
        use_attribute_docstrings=True,
    )
