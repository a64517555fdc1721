"""Which leaves of a config key set with `--secret` are secret.

The engine says only which top-level keys hold a secret (PULUMI_CONFIG_SECRET_KEYS):
`pulumi config set --secret --path pganalytics:chart.values.a.b ...` makes all of
`pganalytics:chart` a secret key, while Pulumi.<stack>.yaml keeps its other leaves in plain
text (the secret one as `secure: v1:...`). A leaf counts as plain only where the stack file
holds the same value in plain text at the same path, so a missing or stale stack file (config
from the automation API, another config file) hides more, never less.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components.settings.base import PROJECT_ROOT
from components.settings.checks import NAMESPACE

LeafPath = tuple  # elements: str (map key) or int (list index); () is the whole value


def parsed(value: Any) -> Any:
    """A config value as the program reads it: the CLI passes objects and lists as JSON."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        with contextlib.suppress(json.JSONDecodeError):
            return json.loads(value)
    return value


def leaves(node: Any, prefix: LeafPath = ()) -> Iterator[tuple[LeafPath, Any]]:
    """(path, value) of every scalar inside `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from leaves(value, (*prefix, i))
    else:
        yield prefix, node


def plain_leaves(text: str) -> dict[str, dict[LeafPath, Any]]:
    """Per `pganalytics:` key (without the namespace), the leaves a stack file's text holds in
    plain text; the encrypted ones (`{secure: ...}`) are left out."""
    config = (yaml.safe_load(text) or {}).get("config") or {}
    found: dict[str, dict[LeafPath, Any]] = {}
    for key, value in config.items() if isinstance(config, dict) else ():
        if str(key).startswith(f"{NAMESPACE}:"):
            found[key.split(":", 1)[1]] = dict(_leaves_outside_secure(value))
    return found


def _leaves_outside_secure(node: Any, prefix: LeafPath = ()) -> Iterator[tuple[LeafPath, Any]]:
    if isinstance(node, dict) and set(node) == {"secure"}:
        return
    if isinstance(node, (dict, list)):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            yield from _leaves_outside_secure(value, (*prefix, key))
    else:
        yield prefix, node


def project_dir() -> Path:
    """The directory of the Pulumi.yaml the engine runs, which need not be this checkout (a
    project may link to it). Outside the engine (unit tests) the SDK holds a placeholder, not a
    project: then this checkout."""
    root = pulumi.get_root_directory()
    if root and (Path(root) / "Pulumi.yaml").is_file():
        return Path(root)
    return PROJECT_ROOT


def secret_leaves(
    stack: str, config: dict[str, Any], secret_keys: set[str]
) -> dict[str, tuple[LeafPath, ...]]:
    """For each secret key, the paths of its secret leaves inside its (parsed) value."""
    stack_file = project_dir() / f"Pulumi.{stack}.yaml"
    plain = plain_leaves(stack_file.read_text()) if stack_file.is_file() else {}
    found = {}
    for key in secret_keys:
        known = plain.get(key, {})
        found[key] = tuple(
            path
            for path, value in leaves(parsed(config.get(key)))
            if path not in known or not _same(known[path], value)
        )
    return found


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def chart_values_paths(chart_leaves: tuple[LeafPath, ...]) -> tuple[LeafPath, ...]:
    """The secret leaves of `pganalytics:chart` that lie inside `chart.values`, relative to it."""
    return tuple(path[1:] for path in chart_leaves if path[:1] == ("values",) and len(path) > 1)


@dataclass(frozen=True)
class Secrets:
    """What a message must not show: the texts of every secret leaf (`hide` replaces them) and
    the secret leaves of `chart.values` (`chart_paths`), whose schema errors are described
    without their value. Built once by the loader and handed to the chart's schema check."""

    texts: tuple[str, ...] = ()  # longest first, so a secret inside another is not left half
    chart_paths: tuple[LeafPath, ...] = ()

    @classmethod
    def of(cls, config: dict[str, Any], hidden: dict[str, tuple[LeafPath, ...]]) -> Secrets:
        texts = {
            text
            for key, paths in hidden.items()
            for path, leaf in leaves(parsed(config.get(key)))
            if path in paths
            for text in _forms(parsed(leaf))
        }
        return cls(
            tuple(sorted(texts, key=len, reverse=True)),
            chart_values_paths(hidden.get("chart", ())),
        )

    def hide(self, message: str) -> str:
        """`message` with every secret text replaced by [secret]. Run it on a whole message
        before anything shortens it: a shortened message may hold a prefix of a secret, which
        no longer matches the whole secret."""
        for text in self.texts:
            message = message.replace(text, "[secret]")
        return message

    def holds_chart_secret(self, path: tuple) -> bool:
        """Whether the chart value at `path` (inside chart.values) is, or holds, a secret leaf."""
        return any(p[: len(path)] == tuple(path) for p in self.chart_paths)


NO_SECRETS = Secrets()


def _forms(value: Any) -> Iterator[str]:
    """A secret as a message may quote it: as it is, inside repr() or JSON quotes, and, when
    short, only in its quoted forms (a bare 3-character match would garble ordinary words)."""
    if value is None or isinstance(value, bool):
        return
    text = str(value)
    if len(text) >= 4:
        yield from (text, repr(text)[1:-1], json.dumps(text)[1:-1])
    elif text:
        yield from (repr(text), json.dumps(text))
