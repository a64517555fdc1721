"""The chart values the program passes to `charts/pganalytics`, and their schema check.

Merge order (later wins): chart defaults (`values.yaml`) < `values-<stack>.yaml` < values
derived from the target (storage class, ingress class, hosts, URLs, the credentials Secret,
the bootstrap's run token after a credential rotation) <
overrides from `pganalytics:chart.values`. Only the keys listed in docs/CHART_INTERFACE.md
are derived here.

Every derived value is known from settings alone (no cloud resource output), so the merged
values can be validated against `values.schema.json` before any resource is registered.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from typing import TYPE_CHECKING, Any

from components import budget, database
from components.settings import CHART_DIR, CREDENTIALS_SECRET, NAMESPACE
from components.settings.base import chart_values_file, values_file_shown
from components.settings.credentials import rotation_version
from components.settings.secret_leaves import NO_SECRETS, Secrets

if TYPE_CHECKING:
    from components.settings import Settings


def deep_merge(base: dict, override: dict) -> dict:
    """Helm-style merge: maps merge key by key, everything else (lists too) replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def overlay(values: dict, over: dict) -> dict:
    """`values` with `over` merged in as deep_merge does, but copying nothing: the program's
    own values (backup destination, snapshot class) hold Outputs, which the v4 Chart resolves
    where they are and which must not be deep-copied."""
    out = dict(values)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = overlay(out[key], value)
        else:
            out[key] = value
    return out


@cache
def _schema() -> dict | None:
    path = CHART_DIR / "values.schema.json"
    return json.loads(path.read_text()) if path.is_file() else None


def derived_values(settings: Settings) -> dict[str, Any]:
    """The values the program sets from the target (docs/CHART_INTERFACE.md)."""
    ing = settings.ingress
    values: dict[str, Any] = {
        "global": {"storageClass": settings.storage.class_name},
        "backend": {
            "auth": {"existingSecret": CREDENTIALS_SECRET},
            # FRONTEND_URL: the web UI when it is deployed, else the API.
            "config": {
                "apiBaseUrl": settings.api_url,
                "frontendUrl": settings.app_url or settings.api_url,
            },
        },
        "timescaledb": {"auth": {"existingSecret": CREDENTIALS_SECRET}},
        "redis": {"auth": {"existingSecret": CREDENTIALS_SECRET}},
        "grafana": {"admin": {"existingSecret": CREDENTIALS_SECRET}},
        "ingress": {
            "enabled": ing.enabled,
            "className": ing.class_name,
            "tls": {"enabled": ing.tls, "clusterIssuer": ing.cluster_issuer},
            "api": {"host": ing.api_host},
            "grafana": {"host": ing.grafana_host},
            "frontend": {"host": ing.frontend_host},
        },
    }
    if ing.enabled:
        # The NetworkPolicy allow rule: ingress controller -> API / Grafana.
        values["networkPolicy"] = {"ingressControllerNamespace": ing.controller_namespace}
    version = rotation_version(settings.credentials.rotation)
    if version:
        # A rotation runs the database bootstrap again, which applies the role passwords.
        values["databaseBootstrap"] = {"runToken": version}
    if settings.chart.image_registry:
        values["global"]["imageRegistry"] = settings.chart.image_registry
    if settings.chart.image_tag:
        values["backend"]["image"] = {"tag": settings.chart.image_tag}
        values["collector"] = {"image": {"tag": settings.chart.image_tag}}
    # The database mode: bundled StatefulSet, CloudNativePG Cluster or external server.
    return deep_merge(values, database.chart_values(settings))


def merged_values(settings: Settings, include_defaults: bool = False) -> dict[str, Any]:
    """Values handed to the chart. Helm applies values.yaml itself, so it is left out
    unless `include_defaults` (used for the schema check, which sees what Helm sees)."""
    layers = [
        chart_values_file(settings.chart.values_file),
        derived_values(settings),
        settings.chart.values,
    ]
    if include_defaults:
        layers.insert(0, chart_values_file("values.yaml"))
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, layer)
    return merged


def _path_of(error) -> str:
    parts = [str(p) for p in error.absolute_path]
    # additionalProperties errors point at the parent: name the offending key.
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set((error.schema.get("properties") or {}).keys())
        extra = [k for k in error.instance if k not in allowed]
        if extra:
            parts.append(extra[0])
    return ".".join(parts)


# Schema rules whose message names properties only, never a value.
VALUE_FREE_RULES = ("additionalProperties", "required")


def _message(error, secrets: Secrets) -> str:
    """The schema's verdict on one value, never showing a value set with --secret: an error on
    a value that is or holds a secret leaf names the rule only, and any other message is
    scrubbed of the secret texts before it is shortened (a cut message may hold a prefix of a
    secret, which no longer matches the whole one)."""
    if error.validator not in VALUE_FREE_RULES and secrets.holds_chart_secret(
        tuple(error.absolute_path)
    ):
        rule = json.dumps(error.validator_value, default=str)
        rule = rule if len(rule) <= 80 else rule[:77] + "..."
        return f"[secret] fails the schema's {error.validator} rule {rule}"
    message = secrets.hide(error.message)
    return message if len(message) < 160 else message[:157] + "..."


@cache
def helm_regex(pattern: str) -> re.Pattern:
    """A values.schema.json `pattern` read as Helm reads it: Helm's validator uses Go's RE2,
    where \\d, \\w and \\s match ASCII only and `$` matches only at the end of the text.
    Python's re would let a fullwidth digit through \\d and a trailing newline through `$`, so
    the program's check would pass values Helm refuses (or, for a pattern, look-alikes)."""
    out, escaped, in_class = [], False, False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            out.append(char)
            escaped = True
        elif char == "[" and not in_class:
            in_class = True
            out.append(char)
        elif char == "]" and in_class:
            in_class = False
            out.append(char)
        else:
            out.append(r"\Z" if char == "$" and not in_class else char)
    return re.compile("".join(out), re.ASCII)


def _helm_pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not helm_regex(pattern).search(instance):
        from jsonschema import ValidationError

        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _check(merged: dict, overrides: dict, values_file: str, secrets: Secrets) -> list[str]:
    schema = _schema()
    if schema is None:
        return []
    import jsonschema

    base = jsonschema.validators.validator_for(schema)
    validator = jsonschema.validators.extend(base, {"pattern": _helm_pattern})(schema)
    problems = []
    for error in sorted(validator.iter_errors(merged), key=lambda e: list(e.absolute_path)):
        path = _path_of(error)
        message = _message(error, secrets)
        if path and budget.defined(overrides, path):
            problems.append(
                f"{NAMESPACE}:chart.values.{path} is rejected by the chart schema ({message}); "
                f"fix: pulumi config rm --path {NAMESPACE}:chart.values.{path} "
                f"(or set a value the schema allows, see docs/HELM_VALUES_REFERENCE.md)"
            )
        else:
            problems.append(
                f"chart value {path or '<root>'} from {values_file_shown(values_file)} or the "
                f"program is rejected by the chart schema ({message}); fix: correct "
                f"{values_file}, or override it with "
                f"pulumi config set --path {NAMESPACE}:chart.values.{path or 'key'} <value>"
            )
    return problems


def validate_overrides(
    values_file: str, overrides: dict, secrets: Secrets = NO_SECRETS
) -> list[str]:
    """Schema problems of `pganalytics:chart.values` alone (chart defaults < values file <
    overrides), so they are listed with the other config problems."""
    merged = deep_merge(
        deep_merge(chart_values_file("values.yaml"), chart_values_file(values_file)), overrides
    )
    return [p for p in _check(merged, overrides, values_file, secrets) if "chart.values." in p]


def problems(
    settings: Settings | None, values_file: str, overrides: dict, secrets: Secrets = NO_SECRETS
) -> list[str]:
    """The chart schema's verdict for `load_settings`: on the fully merged values when the
    settings are valid, else on the `chart.values` overrides alone (listed with the other
    config problems)."""
    if settings:
        return validate(settings, secrets)
    return validate_overrides(values_file, overrides, secrets)


def validate(settings: Settings, secrets: Secrets = NO_SECRETS) -> list[str]:
    """Problems the chart's values.schema.json finds in the fully merged values, then (when it
    finds none) a connection budget above the database's max_connections, each naming the
    config key (or values file) responsible and how to fix it."""
    merged = merged_values(settings, include_defaults=True)
    found = _check(merged, settings.chart.values, settings.chart.values_file, secrets)
    return found or budget.problems(merged, settings.chart.values, settings.chart.values_file)
