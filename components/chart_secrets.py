"""Values set with `pulumi config set --secret --path pganalytics:chart.values.<path> ...` stay
secret on their way into the chart.

Which leaves are secret is settled with the settings (components/settings/secret_leaves.py:
from the encrypted leaves of `Pulumi.<stack>.yaml`, every leaf of `chart.values` when the file
cannot tell) and arrives here as `settings.chart_secret_paths`.

Every literal `value` of an `extraEnv` entry is treated the same way, whoever set it (values
file or config) and whatever its name: settings refuse literals whose name looks like a
credential (components/settings/checks.py), and this catches what a name does not tell.

Two places need the marking:
- the Chart's `values` input: each secret leaf becomes `Output.secret`, so the state keeps only
  that leaf encrypted;
- the objects the chart renders: helm.v4.Chart registers them with plain inputs whatever the
  secrecy of `values` (only `v1/Secret` data is wrapped by the provider), so a transform wraps
  every rendered string that contains a secret value (`hide_secret_strings`).
"""

from __future__ import annotations

from typing import Any

import pulumi

SecretPath = tuple  # elements: str (map key) or int (list index)

# A secret shorter than this is only hidden where a whole rendered string equals it: a short
# value (e.g. "abc") would match inside unrelated strings.
MIN_SUBSTRING = 4


MISSING = object()


def value_at(tree: Any, path: SecretPath) -> Any:
    """The value at `path` inside maps and lists, or MISSING."""
    node = tree
    for part in path:
        in_map = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_map or in_list):
            return MISSING
        node = node[part]
    return node


def _copy_tree(node: Any) -> Any:
    """A copy of the maps and lists of `node`; leaves are shared, not copied: they may be
    Outputs (e.g. the backup values), which cannot be deep-copied."""
    if isinstance(node, dict):
        return {key: _copy_tree(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_copy_tree(value) for value in node]
    return node


def mark_values(values: dict, paths: tuple[SecretPath, ...]) -> dict:
    """A copy of the chart values with each secret leaf wrapped in `Output.secret`."""
    out = _copy_tree(values)
    for path in paths:
        parent = value_at(out, path[:-1])
        if parent is MISSING or value_at(out, path) is MISSING:
            continue
        parent[path[-1]] = pulumi.Output.secret(parent[path[-1]])
    return out


def secret_strings(overrides: dict, paths: tuple[SecretPath, ...]) -> frozenset[str]:
    """The secret leaves as the chart renders them (strings)."""
    found = set()
    for path in paths:
        value = value_at(overrides, path)
        if value is not MISSING and value is not None and not isinstance(value, (dict, list)):
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if text:
                found.add(text)
    return frozenset(found)


def _holds_secret(text: str, secrets: frozenset[str]) -> bool:
    return any(s == text or (len(s) >= MIN_SUBSTRING and s in text) for s in secrets)


def _rewrite(props: Any, replace) -> tuple[Any, bool]:
    """`props` with every map or string for which `replace` returns a value swapped for it,
    and whether anything was swapped."""
    swapped = replace(props)
    if swapped is not None:
        return swapped, True
    if isinstance(props, dict):
        items = {key: _rewrite(value, replace) for key, value in props.items()}
        return {k: v for k, (v, _) in items.items()}, any(hit for _, hit in items.values())
    if isinstance(props, list):
        found = [_rewrite(v, replace) for v in props]
        return [v for v, _ in found], any(hit for _, hit in found)
    return props, False


def hide_secret_strings(props: Any, secrets: frozenset[str]) -> tuple[Any, bool]:
    """`props` with every string that contains a secret wrapped in `Output.secret`, and
    whether anything was wrapped."""

    def replace(node: Any) -> Any:
        if isinstance(node, str) and _holds_secret(node, secrets):
            return pulumi.Output.secret(node)
        return None

    return _rewrite(props, replace)


def literal_env(values: dict) -> tuple[tuple[SecretPath, ...], frozenset[tuple[str, str]]]:
    """The literal `extraEnv` values of the chart values: their paths (for `mark_values`) and
    the (name, value) pairs the chart renders into container env (for `hide_env_values`)."""
    paths, pairs = [], set()

    def walk(node: Any, path: SecretPath) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "extraEnv" and isinstance(value, list):
                    for i, env in enumerate(value):
                        literal = env.get("value") if isinstance(env, dict) else None
                        if isinstance(literal, str) and literal:
                            paths.append((*path, key, i, "value"))
                            pairs.add((str(env.get("name", "")), literal))
                else:
                    walk(value, (*path, key))

    walk(values, ())
    return tuple(paths), frozenset(pairs)


def hide_env_values(props: Any, pairs: frozenset[tuple[str, str]]) -> tuple[Any, bool]:
    """`props` with the `value` of every container env entry whose (name, value) is one of
    `pairs` wrapped in `Output.secret`, and whether anything was wrapped."""

    def replace(node: Any) -> Any:
        if isinstance(node, dict) and (node.get("name"), node.get("value")) in pairs:
            return {**node, "value": pulumi.Output.secret(node["value"])}
        return None

    return _rewrite(props, replace)
