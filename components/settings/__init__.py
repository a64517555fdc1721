"""Typed, validated settings built from the `pganalytics:` stack configuration.

One pydantic model per config object, with its fields, defaults, docs and validators:
`cluster` (node pool, network, endpoint, cluster options), `maintenance` (upgrade windows),
`workload` (ingress, storage,
chart), `backup` (off-cluster backups), `credentials` (rotation) and `models` (`Settings`,
the top-level keys). `base` holds the shared field types and the per-cloud facts, `checks`
the problem format, `secret_leaves` which leaves of a key set with --secret are secret, and
`loader` reads the stack configuration and reports every problem at once. See
docs/ARCHITECTURE.md.
"""

from components.settings.base import (
    CERT_MANAGER_NAMESPACE,
    CHART_DIR,
    CREDENTIALS_SECRET,
    DEFAULT_STORAGE_CLASS,
    PROJECT_ROOT,
    REGION_PATTERNS,
    RELEASE_NAME,
    TARGETS,
    TRAEFIK_NAMESPACE,
)
from components.settings.checks import NAMESPACE
from components.settings.loader import ConfigError, build_settings, load_settings
from components.settings.models import Settings

__all__ = [
    "CERT_MANAGER_NAMESPACE",
    "CHART_DIR",
    "CREDENTIALS_SECRET",
    "DEFAULT_STORAGE_CLASS",
    "NAMESPACE",
    "PROJECT_ROOT",
    "REGION_PATTERNS",
    "RELEASE_NAME",
    "TARGETS",
    "TRAEFIK_NAMESPACE",
    "ConfigError",
    "Settings",
    "build_settings",
    "load_settings",
]
