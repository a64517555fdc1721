"""The `credentials` config object: rotation of the generated credentials (which keys may be
rotated, and why the others may not, are facts of the chart's credentials Secret kept here so
that settings depend on no other component; components/credentials.py reads them)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pydantic import Field
from pydantic import field_validator as check

from components.settings.base import Model
from components.settings.checks import NAMESPACE, Problems, set_cmd, shown, suggest

ROTATABLE = (
    "postgres-password",
    "database-password",
    "redis-password",
    "jwt-secret",
    "registration-secret",
)
NOT_ROTATABLE = {
    "grafana-admin-password": "Grafana stores the admin password in its database at the "
    "first start and ignores the Secret afterwards, so its admin login would keep the old one "
    "while the database bootstrap gives the new one to Grafana's read-only datasource role; "
    "change the admin password in Grafana (grafana cli admin reset-admin-password, see "
    "docs/OPERATIONS.md#credential-rotation)",
    "encryption-key": "what the API encrypted with it (ENCRYPTION_KEY) would become unreadable "
    "with a new key",
    "grafana-admin-user": "it is a user name, not a credential",
    # The chart's first-admin password (docs/CHART_INTERFACE.md).
    "admin-password": "the database bootstrap applies it only while the first user admin "
    "still has the seeded password; after that it is that user's own password, changed in "
    "pgAnalytics",
}
MAX_ROTATION = 1_000_000


def rotation_version(rotation: dict[str, int]) -> str | None:
    """Hash of the rotation generations (no secret in it): set as the pods' restart annotation
    and as the chart's databaseBootstrap.runToken. None while nothing was ever rotated."""
    live = {k: n for k, n in sorted(rotation.items()) if n}
    if not live:
        return None
    return hashlib.sha256(json.dumps(live, sort_keys=True).encode()).hexdigest()[:16]


class Credentials(Model):
    """Rotation of the generated credentials (docs/OPERATIONS.md#credential-rotation)."""

    rotation: dict[str, int] = Field(default_factory=dict)
    """Key of the credentials Secret -> generation, a whole number from 0 to 1000000; raising
    it by one (e.g. pganalytics:credentials.rotation.database-password 1) regenerates that one
    credential, applies it to PostgreSQL and restarts the pods that use it. Rotatable:
    postgres-password, database-password, redis-password, jwt-secret, registration-secret."""

    @check("rotation", mode="before")
    def _rotation(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value  # pydantic says "must be an object"
        found, clean = Problems(), {}
        for key, raw in value.items():
            path = f"{NAMESPACE}:credentials.rotation.{key}"
            number = _whole_number(raw)
            if key in NOT_ROTATABLE:
                why = f"cannot be rotated: {NOT_ROTATABLE[key]}"
                found.add(key, why, fix=f"pulumi config rm --path {path}")
            elif key not in ROTATABLE:
                hint = suggest(key, list(ROTATABLE)) or ROTATABLE[0]
                moved = number if number is not None and 0 < number <= MAX_ROTATION else 1
                why = f"names no rotatable credential (rotatable: {', '.join(ROTATABLE)})"
                fix = f"pulumi config rm --path {path} && "
                found.add(key, why, fix=fix + set_cmd(f"credentials.rotation.{hint}", moved))
            elif number is None:
                found.add(key, f"must be an integer (got {raw!r})", 1)
            elif not 0 <= number <= MAX_ROTATION:
                why = f"must be a whole number from 0 to {MAX_ROTATION} (got {shown(number)})"
                found.add(key, f"{why}; raise it by one to rotate", 1)
            else:
                clean[key] = number
        found.raise_any()
        return clean


def _whole_number(raw: Any) -> int | None:
    """A generation as the CLI gives it (typed with --path, a string without), else None."""
    if raw is None:
        return 0
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"-?[0-9]+", raw.strip()):
        return int(raw.strip())
    return None
