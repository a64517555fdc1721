"""Values set with `pulumi config set --secret --path pganalytics:chart.values.<path> ...` stay
secret on their way into the chart.

The Pulumi CLI tells the program only that the top-level key `pganalytics:chart` holds a
secret (PULUMI_CONFIG_SECRET_KEYS has no finer grain). The stack file knows which leaves are
encrypted (`secure: v1:...`), so the secret paths are read from `Pulumi.<stack>.yaml`; when the
file cannot tell (config from elsewhere, e.g. the automation API), every leaf of
`chart.values` is treated as secret, which hides more of the preview but never leaks.

Two places need the marking:
- the Chart's `values` input: each secret leaf becomes `Output.secret`, so the state keeps only
  that leaf encrypted;
- the objects the chart renders: helm.v4.Chart registers them with plain inputs whatever the
  secrecy of `values` (only `v1/Secret` data is wrapped by the provider), so a transform wraps
  every rendered string that contains a secret value (`hide_secret_strings`).
"""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import yaml

from components.settings import NAMESPACE, PROJECT_ROOT

SecretPath = tuple  # elements: str (map key) or int (list index)

# A secret shorter than this is only hidden where a whole rendered string equals it: a short
# value (e.g. "abc") would match inside unrelated strings.
MIN_SUBSTRING = 4


def _secure_leaves(node: Any, prefix: SecretPath = ()) -> list[SecretPath]:
    if isinstance(node, dict):
        if set(node) == {"secure"}:
            return [prefix]
        return [p for k, v in node.items() for p in _secure_leaves(v, (*prefix, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _secure_leaves(v, (*prefix, i))]
    return []


def _all_leaves(node: Any, prefix: SecretPath = ()) -> list[SecretPath]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _all_leaves(v, (*prefix, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _all_leaves(v, (*prefix, i))]
    return [prefix]


def paths_from_stack_file(text: str) -> list[SecretPath] | None:
    """Secret leaves under `pganalytics:chart.values` in a stack file's text, or None when the
    file has no encrypted leaf there."""
    data = yaml.safe_load(text) or {}
    chart = (data.get("config") or {}).get(f"{NAMESPACE}:chart")
    if not isinstance(chart, dict) or not isinstance(chart.get("values"), dict):
        return None
    return _secure_leaves(chart["values"]) or None


def secret_paths(stack: str, overrides: dict) -> tuple[SecretPath, ...]:
    """Paths inside `chart.values` to keep secret (called only when `pganalytics:chart` is a
    secret key)."""
    stack_file = PROJECT_ROOT / f"Pulumi.{stack}.yaml"
    found = paths_from_stack_file(stack_file.read_text()) if stack_file.is_file() else None
    paths = found if found is not None else _all_leaves(overrides)
    return tuple(p for p in paths if _get(overrides, p) is not _MISSING)


_MISSING = object()


def _get(tree: Any, path: SecretPath) -> Any:
    node = tree
    for part in path:
        in_map = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_map or in_list):
            return _MISSING
        node = node[part]
    return node


def mark_values(values: dict, paths: tuple[SecretPath, ...]) -> dict:
    """A copy of the chart values with each secret leaf wrapped in `Output.secret`."""
    out = copy.deepcopy(values)
    for path in paths:
        parent = _get(out, path[:-1])
        if parent is _MISSING or _get(out, path) is _MISSING:
            continue
        parent[path[-1]] = pulumi.Output.secret(parent[path[-1]])
    return out


def secret_strings(overrides: dict, paths: tuple[SecretPath, ...]) -> frozenset[str]:
    """The secret leaves as the chart renders them (strings)."""
    found = set()
    for path in paths:
        value = _get(overrides, path)
        if value is not _MISSING and value is not None and not isinstance(value, (dict, list)):
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if text:
                found.add(text)
    return frozenset(found)


def _holds_secret(text: str, secrets: frozenset[str]) -> bool:
    return any(s == text or (len(s) >= MIN_SUBSTRING and s in text) for s in secrets)


def hide_secret_strings(props: Any, secrets: frozenset[str]) -> tuple[Any, bool]:
    """`props` with every string that contains a secret wrapped in `Output.secret`, and
    whether anything was wrapped."""
    if isinstance(props, dict):
        changed = False
        out = {}
        for key, value in props.items():
            out[key], hit = hide_secret_strings(value, secrets)
            changed |= hit
        return out, changed
    if isinstance(props, list):
        items = [hide_secret_strings(v, secrets) for v in props]
        return [v for v, _ in items], any(hit for _, hit in items)
    if isinstance(props, str) and _holds_secret(props, secrets):
        return pulumi.Output.secret(props), True
    return props, False
