"""Building blocks of the settings validators: how a validator reports a problem (message and
fix), the command that sets a key, name and network rules. Every pattern is matched with
`fullmatch`, so a trailing newline never passes."""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from typing import Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

NAMESPACE = "pganalytics"
NO_FIX = object()

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
K8S_NAME = re.compile(r"(?=.{1,253}\Z)[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
GCP_NAME = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"
GCP_LINK = r"(https://www\.googleapis\.com/compute/v1/)?projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/"
# At least two labels, the last one not all digits (so never an IP address).
HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[-a-z0-9]*[a-z][-a-z0-9]*"
)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}")
# Env var names that hold a credential: a word PASSWORD, SECRET, TOKEN, KEY... between _ or -.
CREDENTIAL_NAME = re.compile(
    r"(.*[_-])?(PASSWORD|PASSWD|PWD|SECRET|TOKEN|KEY|APIKEY|CREDENTIALS?)([_-].*)?", re.I
)
URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]+:[^/@\s]+@.*", re.S)
RFC1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
PRIVATE_RANGES = [*RFC1918, ipaddress.ip_network("100.64.0.0/10")]


class Problems(list):
    """What one validator found, raised together so nothing hides behind the first problem.

    `key` is relative to the validated model or field ("" = the field itself); the fix is the
    command that sets `fix_key` (default `key`) to `value`, or `fix` verbatim."""

    def add(self, key: str, message: str, value: Any = NO_FIX, *, fix_key: str = "", fix=""):
        self.append({"key": key, "message": message, "fix": fix, "set": (fix_key or key, value)})
        return self

    def raise_any(self) -> None:
        if self:
            raise PydanticCustomError("config", "{problems}", {"problems": list(self)})


def fail(message: str, value: Any = NO_FIX, *, key: str = "", fix_key: str = "", fix=""):
    """Raises one problem from a validator."""
    Problems().add(key, message, value, fix_key=fix_key, fix=fix).raise_any()


def matches(pattern: re.Pattern | str, message: str, example: str) -> AfterValidator:
    """A string that is empty or matches `pattern` whole; else `message`, fixed by `example`."""

    def check(value: str) -> str:
        if value and not re.fullmatch(pattern, value):
            fail(f"{message} (got {value!r})", example)
        return value

    return AfterValidator(check)


def shown(value: Any) -> str:
    """A value as a shell argument of `pulumi config set`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value) if value == "" or re.search(r"[\s\"'$;&|<>]", value) else value


def set_cmd(key: str, value: Any) -> str:
    """The command(s) that give `key` (dotted, `[i]` for list items) this value."""
    if isinstance(value, dict) and value:
        return " && ".join(set_cmd(f"{key}.{k}", v) for k, v in value.items())
    if isinstance(value, list) and value:
        return " && ".join(set_cmd(f"{key}[{i}]", v) for i, v in enumerate(value))
    if isinstance(value, (dict, list)):
        item = ".<name>" if isinstance(value, dict) else "[0]"
        return f"pulumi config set --path {NAMESPACE}:{key}{item} <value>"
    flag = " --path" if "." in key or "[" in key else ""
    return f"pulumi config set{flag} {config_key(key)} {shown(value)}"


def config_key(key: str) -> str:
    """`pganalytics:<key>` as a shell argument (quoted when it holds a space, as a tag key may)."""
    full = f"{NAMESPACE}:{key}"
    return f"'{full}'" if re.search(r"\s", full) else full


def suggest(name: str, known: list[str]) -> str:
    lowered = {k.lower(): k for k in known}
    if name.lower() in lowered:
        return lowered[name.lower()]
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return match[0] if match else ""


def network(value: str, key: str = "") -> ipaddress.IPv4Network:
    """An IPv4 CIDR without host bits, or a problem whose fix is the corrected CIDR."""
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            fixed: Any = str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            fixed = NO_FIX
        fail(f"is not a valid CIDR (got {value!r})", fixed, key=key)
    if net.version != 4:
        fail(f"must be an IPv4 CIDR: the clusters are IPv4-only (got {value!r})", key=key)
    return net


def overlaps(net: ipaddress.IPv4Network, ranges) -> str:
    """The first of `ranges` that `net` overlaps, or ""."""
    return next((str(r) for r in ranges if net.overlaps(ipaddress.ip_network(r))), "")


def free_range(candidates: tuple[str, ...], taken) -> str:
    """The first candidate overlapping none of `taken` (a fix that is itself valid), or ""."""
    return next((c for c in candidates if not overlaps(ipaddress.ip_network(c), taken)), "")


# A Kubernetes CronJob schedule, as the API server parses it (robfig/cron v3 ParseStandard):
# five fields, or one of these descriptors. Field: (name, lowest, highest, names by value).
CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    (
        "month",
        1,
        12,
        ("", "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
    ),
    ("day of week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)
CRON_TERM = re.compile(r"(\*|\?|([0-9A-Za-z]+)(-([0-9A-Za-z]+))?)(/([0-9]+))?", re.A)


def cron_problem(schedule: str) -> str:
    """Why a CronJob's API server would refuse `schedule`, or "" (only ASCII is accepted)."""
    if not re.fullmatch(r"[0-9A-Za-z*?,/@ -]+", schedule, re.A):
        return (
            "holds characters a cron schedule does not have (digits, names, * ? , / - and spaces)"
        )
    if schedule.startswith("@"):
        return (
            "" if schedule in CRON_DESCRIPTORS else f"is not one of {', '.join(CRON_DESCRIPTORS)}"
        )
    fields = schedule.split()
    if len(fields) != len(CRON_FIELDS):
        return "must have five fields: minute hour day-of-month month day-of-week"
    for text, (name, low, high, names) in zip(fields, CRON_FIELDS, strict=True):
        for term in text.split(","):
            found = CRON_TERM.fullmatch(term)
            if not found:
                return f"has an invalid {name} field ({text!r})"
            whole, first, _, last, _, step = found.groups()
            if whole == "?" and name not in ("day of month", "day of week"):
                return f"has '?' in the {name} field (only day of month and day of week take it)"
            if step is not None and int(step) == 0:
                return f"has a step of 0 in the {name} field ({text!r})"
            bounds = [_cron_value(v, names) for v in (first, last) if v is not None]
            if None in bounds:
                return f"has an unknown value in its {name} field ({text!r})"
            if any(not low <= b <= high for b in bounds):
                return f"has a value outside {low}-{high} in its {name} field ({text!r})"
            if len(bounds) == 2 and bounds[0] > bounds[1]:
                return f"has a range that runs backwards in its {name} field ({text!r})"
    return ""


def _cron_value(text: str, names: tuple[str, ...]) -> int | None:
    if text.isascii() and text.isdigit():
        return int(text)
    upper = text.upper()
    return names.index(upper) if upper in names and upper else None
