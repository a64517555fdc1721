"""Typed, validated settings built from the `pganalytics:` stack configuration.

`models` holds one pydantic model per config object (fields, defaults, docs, validators),
`checks` the shared rules and the problem format, `loader` reads the stack configuration and
reports every problem at once. See docs/ARCHITECTURE.md.
"""

from components.settings.checks import NAMESPACE
from components.settings.loader import ConfigError, build_settings, load_settings
from components.settings.models import (
    CERT_MANAGER_NAMESPACE,
    CHART_DIR,
    CREDENTIALS_SECRET,
    DEFAULT_STORAGE_CLASS,
    PROJECT_ROOT,
    REGION_PATTERNS,
    RELEASE_NAME,
    TARGETS,
    TRAEFIK_NAMESPACE,
    Settings,
)

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
