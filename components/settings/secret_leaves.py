"""Which leaves of a config key set with `--secret` are secret.

The engine says only which top-level keys hold a secret (PULUMI_CONFIG_SECRET_KEYS):
`pulumi config set --secret --path pganalytics:chart.values.a.b ...` makes all of
`pganalytics:chart` a secret key, while Pulumi.<stack>.yaml keeps its other leaves in plain
text (the secret one as `secure: v1:...`). A leaf counts as plain only where the stack file
holds the same value in plain text at the same path, and only while that file is where the
key came from: it holds exactly the key's leaves (each plain one with the engine's value, the
encrypted ones opaque) and imports no Pulumi ESC environment. Otherwise (no stack file, config
from ESC or the Automation API, another config file, a stale file) the program cannot tell
which leaf is secret and every leaf of the key is: all of `chart.values` stays secret.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from components.settings.base import project_dir
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


SECURE = object()  # an encrypted leaf of the stack file: opaque


def file_leaves(text: str) -> tuple[dict[str, dict[LeafPath, Any]], bool]:
    """Per `pganalytics:` key (without the namespace), every leaf a stack file's text holds:
    the plain value, or SECURE for an encrypted one (`{secure: ...}`); and whether the file
    imports ESC environments (then values may come from them)."""
    doc = yaml.safe_load(text) or {}
    config = doc.get("config") or {}
    found: dict[str, dict[LeafPath, Any]] = {}
    for key, value in config.items() if isinstance(config, dict) else ():
        if str(key).startswith(f"{NAMESPACE}:"):
            found[key.split(":", 1)[1]] = dict(_file_leaves(value))
    return found, bool(doc.get("environment"))


def _file_leaves(node: Any, prefix: LeafPath = ()) -> Iterator[tuple[LeafPath, Any]]:
    if isinstance(node, dict) and set(node) == {"secure"}:
        yield prefix, SECURE
    elif isinstance(node, (dict, list)):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            yield from _file_leaves(value, (*prefix, key))
    else:
        yield prefix, node


def _file_is_the_source(held: dict[LeafPath, Any], value: dict[LeafPath, Any]) -> bool:
    """The engine's value of a key came from the stack file: the same leaves, and each plain
    leaf of the file equal to the engine's."""
    return set(held) == set(value) and all(
        v is SECURE or _same(v, value[path]) for path, v in held.items()
    )


def secret_leaves(
    stack: str, config: dict[str, Any], secret_keys: set[str]
) -> dict[str, tuple[LeafPath, ...]]:
    """For each secret key, the paths of its secret leaves inside its (parsed) value."""
    stack_file = project_dir() / f"Pulumi.{stack}.yaml"
    held, imports_env = file_leaves(stack_file.read_text()) if stack_file.is_file() else ({}, False)
    found = {}
    for key in secret_keys:
        value = dict(leaves(parsed(config.get(key))))
        known = held.get(key, {})
        if imports_env or not _file_is_the_source(known, value):
            known = {}  # the program cannot tell: every leaf is secret
        found[key] = tuple(path for path, v in value.items() if known.get(path, SECURE) is SECURE)
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
