"""The `maintenance` config object: when GKE and AKS may upgrade and reimage nodes on their
own (a weekly window and exclusions)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field, ValidationInfo, model_validator
from pydantic import field_validator as check

from components.settings.base import Model, Text, ctx
from components.settings.checks import NAMESPACE, Problems, fail

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EXCLUSION_SCOPES = ("NO_UPGRADES", "NO_MINOR_UPGRADES", "NO_MINOR_OR_NODE_UPGRADES")
TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"
# GKE wants a window open at least 48 hours in any 32 days; 32 days hold 4 of each weekday.
GKE_MIN_HOURS, WEEKS_IN_32_DAYS = 48, 4


class MaintenanceExclusion(Model):
    """A period in which GKE and AKS start no automatic upgrade."""

    name: Text = ""
    """A name for the exclusion (letters, digits, -)."""
    start: Text = ""
    """Start, UTC: 2026-12-20T00:00:00Z."""
    end: Text = ""
    """End, UTC, after start: 2027-01-05T00:00:00Z."""
    scope: Literal[EXCLUSION_SCOPES] = "NO_UPGRADES"
    """GKE: NO_UPGRADES (at most 30 days), NO_MINOR_UPGRADES or NO_MINOR_OR_NODE_UPGRADES. AKS
    skips every scheduled upgrade in the period (notAllowedDates)."""

    @model_validator(mode="after")
    def _period(self) -> MaintenanceExclusion:
        found, times = Problems(), {}
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", self.name, re.I):
            found.add("name", f"must be letters, digits or - (got {self.name!r})", "holidays")
        for key in ("start", "end"):
            try:
                times[key] = datetime.strptime(getattr(self, key), TIMESTAMP)
            except ValueError:
                why = (
                    f"must be a UTC time such as 2026-12-20T00:00:00Z (got {getattr(self, key)!r})"
                )
                found.add(
                    key, why, "2026-12-20T00:00:00Z" if key == "start" else "2027-01-05T00:00:00Z"
                )
        if len(times) == 2 and times["end"] <= times["start"]:
            later = (times["start"] + timedelta(days=7)).strftime(TIMESTAMP)
            found.add("end", f"must be after start ({self.start}; got {self.end})", later)
        elif (
            len(times) == 2
            and self.scope == "NO_UPGRADES"
            and (times["end"] - times["start"] > timedelta(days=30))
        ):
            limit = (times["start"] + timedelta(days=30)).strftime(TIMESTAMP)
            why = "ends more than 30 days after start, the longest NO_UPGRADES exclusion GKE "
            why += f"accepts (got {self.start} to {self.end})"
            found.add("end", why, limit)
        found.raise_any()
        return self


class Maintenance(Model):
    """When GKE and AKS may upgrade and reimage nodes on their own: a weekly window (UTC) and
    exclusions. EKS changes nodes only when `pulumi up` does (pinned versions)."""

    days: list[Literal[WEEKDAYS]] = Field(default_factory=lambda: ["Saturday", "Sunday"])
    """Days of the window. GKE: every listed day. AKS: the first day for Kubernetes patch
    upgrades, the last for node image upgrades (AKS schedules each weekly on one day)."""
    start_time: Text = "02:00"
    """Start of the window each day, HH:MM in UTC."""
    duration_hours: int = Field(6, ge=4, le=24)
    """Length of the window in hours (at least 4, as AKS requires). GKE needs the windows of 32
    days to add up to 48 hours: days × durationHours × 4 ≥ 48."""
    exclusions: list[MaintenanceExclusion] = Field(default_factory=list)
    """Periods without automatic upgrades, e.g. a year-end freeze: objects with name, start,
    end (UTC, 2026-12-20T00:00:00Z) and, on GKE, scope."""

    @check("start_time")
    def _start(cls, value: str) -> str:
        if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
            fail(f"must be HH:MM in UTC (got {value!r})", "02:00")
        return value

    @check("days")
    def _days(cls, value: list[str]) -> list[str]:
        if not value:
            fail(
                "must list at least one day",
                fix=f"pulumi config set --path '{NAMESPACE}:maintenance.days[0]' Saturday",
            )
        found = Problems()
        for i, day in enumerate(value):
            if day in value[:i]:
                found.add(f"[{i}]", f"repeats {day}")
        found.raise_any()
        return value

    @model_validator(mode="after")
    def _enough(self, info: ValidationInfo) -> Maintenance:
        found = Problems()
        hours = len(self.days) * self.duration_hours * WEEKS_IN_32_DAYS
        if ctx(info, "target") == "gcp" and hours < GKE_MIN_HOURS:
            need = -(-GKE_MIN_HOURS // (len(self.days) * WEEKS_IN_32_DAYS))
            why = f"gives GKE {hours} hours in 32 days; it needs {GKE_MIN_HOURS} (days × "
            why += "durationHours × 4)"
            found.add("durationHours", why, min(24, max(4, need)))
        names = [e.name for e in self.exclusions]
        for i, name in enumerate(names):
            if name in names[:i]:
                found.add(f"exclusions[{i}].name", f"repeats {name!r}")
        found.raise_any()
        return self
