#!/usr/bin/env python3
"""Writes the configuration reference from the settings models (components/settings/):
the `config:` block of Pulumi.yaml, the table in README.md and the key tables in
docs/CONFIGURATION.md. The models hold every key's type, default and doc, so none of these is
kept by hand. `--check` exits 1 when a file is stale (the test suite runs it; `make docs`
rewrites them).
"""

from __future__ import annotations

import json
import sys
import textwrap
import typing
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import BaseModel  # noqa: E402

from components.settings import NAMESPACE, Settings  # noqa: E402

PULUMI_YAML = ROOT / "Pulumi.yaml"
README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "CONFIGURATION.md"
PULUMI_TYPES = {str: "string", int: "integer", bool: "boolean"}


class Dumper(yaml.SafeDumper):
    """Indents list items under their key, as yamllint expects."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def is_model(annotation) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def doc(text: str | None) -> str:
    return " ".join((text or "").split())


def defaults(model: type[BaseModel]) -> dict:
    """A model's defaults by key, as the stack configuration spells them."""
    return {
        f.alias: defaults(f.annotation)
        if is_model(f.annotation)
        else f.get_default(call_default_factory=True)
        for f in model.model_fields.values()
    }


def kind(annotation) -> str:
    """The type column: string, integer, boolean, list, object, or the choices."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{c}`" for c in typing.get_args(annotation))
    if origin is list:
        return "list"
    if origin is dict or is_model(annotation):
        return "object"
    return PULUMI_TYPES.get(annotation, "string")


def cell(text: str) -> str:
    return doc(text).replace("|", "\\|")


def anchor(key: str) -> str:
    return f"{NAMESPACE}{key}".lower()


def render_pulumi_config() -> str:
    lines = ["config:"]
    for key, field in ((f.alias, f) for f in Settings.model_fields.values()):
        spec: dict = {}
        ann = field.annotation
        if not is_model(ann) and typing.get_origin(ann) is not dict:
            spec["type"] = PULUMI_TYPES.get(ann, "string")
        spec["default"] = (
            defaults(ann) if is_model(ann) else field.get_default(call_default_factory=True)
        )
        body = yaml.dump(spec, Dumper=Dumper, sort_keys=False, allow_unicode=True)
        description = ann.__doc__ if is_model(ann) else field.description
        if is_model(ann):
            description += f" Fields: docs/CONFIGURATION.md#{anchor(key)}."
        folded = textwrap.fill(
            doc(description), 92, initial_indent="      ", subsequent_indent="      "
        )
        lines.append(f"  {key}:")
        lines += ["    " + line for line in body.splitlines()]
        lines += ["    description: >-", folded]
    return "\n".join(lines) + "\n"


def render_readme_table() -> str:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for field in Settings.model_fields.values():
        key, ann = field.alias, field.annotation
        if is_model(ann):
            default = f"[fields](docs/CONFIGURATION.md#{anchor(key)})"
            meaning = ann.__doc__
        else:
            default, meaning = (
                f"`{json.dumps(field.get_default(call_default_factory=True))}`",
                field.description,
            )
        rows.append(f"| `{NAMESPACE}:{key}` | {kind(ann)} | {default} | {cell(meaning)} |")
    return "\n".join(rows)


def render_tables() -> dict[str, str]:
    """The tables of docs/CONFIGURATION.md: top-level keys, then one per object."""
    tables = {"keys": render_readme_table().replace("](docs/CONFIGURATION.md#", "](#")}
    for field in Settings.model_fields.values():
        if not is_model(field.annotation):
            continue
        rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
        for sub in field.annotation.model_fields.values():
            default = json.dumps(sub.get_default(call_default_factory=True))
            name, meaning = f"`{field.alias}.{sub.alias}`", cell(sub.description)
            rows.append(f"| {name} | {kind(sub.annotation)} | `{default}` | {meaning} |")
        tables[field.alias] = "\n".join(rows)
    return tables


def replace_block(text: str, name: str, body: str, path: Path) -> str:
    start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
    if start not in text or end not in text:
        raise SystemExit(f"{path.relative_to(ROOT)} has no {start} … {end} block")
    before, rest = text.split(start, 1)
    return f"{before}{start}\n{body}\n{end}{rest.split(end, 1)[1]}"


def updated() -> dict[Path, str]:
    project = PULUMI_YAML.read_text()
    head = project[: project.index("\nconfig:") + 1]
    readme = replace_block(README.read_text(), "config-reference", render_readme_table(), README)
    configuration = CONFIGURATION.read_text()
    for name, table in render_tables().items():
        configuration = replace_block(configuration, f"config-{name}", table, CONFIGURATION)
    return {
        PULUMI_YAML: head + render_pulumi_config(),
        README: readme,
        CONFIGURATION: configuration,
    }


def main() -> int:
    stale = [path for path, text in updated().items() if path.read_text() != text]
    if "--check" in sys.argv[1:]:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run 'make docs'", file=sys.stderr)
        return 1 if stale else 0
    for path, text in updated().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
