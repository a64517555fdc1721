"""The dated tables the capacity check and the cost estimate read (data/*.yaml), parsed once,
and the Kubernetes quantity parsing both need."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

DATA_DIR = Path(__file__).resolve().parent / "data"


@cache
def table(name: str) -> dict:
    """data/<name>.yaml as a dict."""
    return yaml.safe_load((DATA_DIR / f"{name}.yaml").read_text()) or {}


_CPU = re.compile(r"([0-9.]+)(m?)")
_MEM = re.compile(r"([0-9.]+(?:e[0-9]+)?)([KMGTPE]i?|k)?")
_UNITS = {
    "": 1,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def cpu_millis(value) -> int:
    """A CPU quantity (2, "0.5", "250m") in millicores; None or "" is 0."""
    if value in (None, ""):
        return 0
    found = _CPU.fullmatch(str(value).strip())
    if not found:
        raise ValueError(f"not a CPU quantity: {value!r}")
    number = float(found.group(1))
    return round(number if found.group(2) else number * 1000)


def mem_mib(value) -> float:
    """A memory quantity ("128Mi", "2Gi", "1G", bytes) in MiB; None or "" is 0."""
    if value in (None, ""):
        return 0.0
    found = _MEM.fullmatch(str(value).strip())
    if not found:
        raise ValueError(f"not a memory quantity: {value!r}")
    return float(found.group(1)) * _UNITS[found.group(2) or ""] / 2**20


def gib(value) -> float:
    """A volume size ("20Gi", "512Mi") in GiB."""
    return mem_mib(value) / 1024
