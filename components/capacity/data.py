"""The dated tables the capacity check and the cost estimate read (data/*.yaml), parsed once,
and the Kubernetes quantity parsing both need."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

from components.volumes import quantity_bytes

DATA_DIR = Path(__file__).resolve().parent / "data"


@cache
def table(name: str) -> dict:
    """data/<name>.yaml as a dict."""
    return yaml.safe_load((DATA_DIR / f"{name}.yaml").read_text()) or {}


_CPU = re.compile(r"([0-9.]+)(m?)")


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
    size = quantity_bytes(str(value).strip())
    if size is None:
        raise ValueError(f"not a memory quantity: {value!r}")
    return size / 2**20


def gib(value) -> float:
    """A volume size ("20Gi", "512Mi") in GiB."""
    return mem_mib(value) / 1024
