#!/usr/bin/env python3
"""Writes the configuration reference table in README.md from the `config:` block of Pulumi.yaml.

Pulumi.yaml is where each `pganalytics:` key is declared (type, default, description), so the
README table is generated rather than kept by hand. `--check` exits 1 when README.md is stale
(the test suite runs it).
"""

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render() -> str:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    rows = [
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for key, spec in (project.get("config") or {}).items():
        spec = spec if isinstance(spec, dict) else {"default": spec}
        name = key if ":" in key else f"{project['name']}:{key}"
        kind = spec.get("type", "object" if isinstance(spec.get("default"), dict) else "")
        if spec.get("secret"):
            kind = f"{kind} (secret)".strip()
        default = f"`{json.dumps(spec['default'])}`" if "default" in spec else "—"
        rows.append(
            f"| `{name}` | {kind or 'any'} | {default} | {cell(spec.get('description', ''))} |"
        )
    return "\n".join([START, *rows, END])


def main() -> int:
    text = README.read_text()
    if START not in text or END not in text:
        print(f"README.md has no {START} … {END} block", file=sys.stderr)
        return 1
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    updated = before + render() + after
    if "--check" in sys.argv[1:]:
        if updated != text:
            print("README.md configuration reference is stale: run 'make docs'", file=sys.stderr)
            return 1
        return 0
    README.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
