#!/usr/bin/env python3
"""The pull-request preview report of one stack, in Markdown, from the engine's own record of
a `pulumi preview --json` run with PULUMI_ENABLE_STREAMING_JSON_PREVIEW=true: one engine event
per line. The resource events carry each step (`op`, old and new state, `keys` = the
properties forcing a replacement, `diffs`, `detailedDiff`); the diagnostic and policy events
carry the errors and the policy violations (the non-streaming `--json` digest leaves the policy
events out, hence the stream).

Usage: preview_report.py STACK STATUS EVENTS.jsonl STDERR.txt
                         [--comment FILE] [--limit CHARS] [--run-url URL] [-- CONFIG FLAGS]
  Prints the full report (every changed resource with every changed property). --comment
  writes the same report cut to at most CHARS characters (a pull-request comment holds 65536),
  whole resources at a time, saying how many were left out and where the full report is.
  The stack's secret config values (read with `pulumi config --show-secrets` in the current
  directory, with CONFIG FLAGS such as --config-file, and kept in memory) are scrubbed from
  every text shown; the engine already shows secret property values as [secret].

Called by scripts/preview.sh; tested on the real engine's output in tests/e2e and on recorded
events in tests/project/test_preview_report.py.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The program's own rules: which config leaves are secret, and the path walk of secret values
# (run from the project's root).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from components.chart_secrets import MISSING, value_at
from components.settings.secret_leaves import SECURE, file_leaves, leaves

SECRET = "[secret]"
# How the engine's events write a secret value (pulumi/sdk resource/sig.go: the secret
# signature, the value blinded to "[secret]").
SIG_KEY, SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"
VALUE_CHARS = 300  # one old or new value, in the report
OPS = {  # the step ops a reader reviews, folded to one word per resource
    "create": "create",
    "update": "update",
    "delete": "delete",
    "replace": "replace",
    "create-replacement": "replace",
    "delete-replaced": "replace",
    "import": "import",
    "import-replacement": "replace",
    "discard": "discard",
    "discard-replaced": "replace",
}
# A replacement shows as three steps (replace, create-replacement, delete-replaced): the
# `replace` one carries the reasons and both states.
RANK = {"replace": 3, "create-replacement": 2, "import-replacement": 2, "discard-replaced": 1}
SIGN = {"create": "+", "update": "~", "delete": "-", "replace": "+-", "import": "=", "discard": "-"}


@dataclass
class Change:
    """One changed property: its path, the kind of change, the old and the new value."""

    path: str
    kind: str
    old: Any = MISSING
    new: Any = MISSING


@dataclass
class Resource:
    op: str
    urn: str
    type: str
    name: str
    replace_reasons: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    changes: list[Change] = field(default_factory=list)


# --- reading the engine's events ---------------------------------------------------------


def parse_path(path: str) -> list[str | int]:
    """A property path as the engine prints it: a.b[0]["c.d"].e -> ["a", "b", 0, "c.d", "e"]."""
    parts: list[str | int] = []
    for m in re.finditer(r'\["((?:[^"\\]|\\.)*)"\]|\[(\d+)\]|([^.\[\]]+)', path):
        if m.group(1) is not None:
            parts.append(json.loads(f'"{m.group(1)}"'))
        elif m.group(2) is not None:
            parts.append(int(m.group(2)))
        else:
            parts.append(m.group(3))
    return parts


def lookup(tree: Any, path: list[str | int]) -> Any:
    """The value at `path`; SECRET inside a secret object or list; MISSING when absent."""
    for depth in range(len(path)):
        if value_at(tree, tuple(path[:depth])) == SECRET:
            return SECRET
    return value_at(tree, tuple(path))


def changes_of(step: dict) -> list[Change]:
    old_state, new_state = step.get("oldState") or {}, step.get("newState") or {}
    detailed = step.get("detailedDiff")
    if detailed is None:
        # The provider gave no detailed diff: the changed top-level keys, whole.
        detailed = {
            key: {"kind": "update", "inputDiff": True} for key in step.get("diffReasons") or []
        }
    found = []
    for path, diff in sorted(detailed.items()):
        parts = parse_path(path)
        old_side = old_state.get("inputs" if diff.get("inputDiff") else "outputs") or {}
        kind = diff.get("kind", "update")
        change = Change(path, kind)
        if not kind.startswith("add"):
            change.old = lookup(old_side, parts)
        if not kind.startswith("delete"):
            change.new = lookup(new_state.get("inputs") or {}, parts)
        found.append(change)
    return found


def read_events(path: Path) -> list[dict]:
    events = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
    return events


def blind(value: Any) -> Any:
    """A state as the events write it, with each secret value as SECRET."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return SECRET
        return {k: blind(v) for k, v in value.items()}
    if isinstance(value, list):
        return [blind(v) for v in value]
    return value


def digest_of(events: list[dict]) -> dict:
    """The steps of the resource events, in the shape of the preview digest."""
    steps = []
    for event in events:
        meta = (event.get("resourcePreEvent") or {}).get("metadata")
        if not meta:
            continue
        state = {}
        for side, key in (("old", "oldState"), ("new", "newState")):
            if meta.get(side):
                state[key] = blind(meta[side])
        detailed = meta.get("detailedDiff")
        if detailed is not None:
            detailed = {
                path: {"kind": d.get("diffKind") or d.get("kind"), "inputDiff": d.get("inputDiff")}
                for path, d in detailed.items()
            }
        steps.append(
            {
                "op": meta.get("op", ""),
                "urn": meta.get("urn", ""),
                **state,
                "replaceReasons": meta.get("keys") or [],
                "diffReasons": meta.get("diffs") or [],
                "detailedDiff": detailed,
            }
        )
    return {"steps": steps}


def resources(digest: dict) -> tuple[list[Resource], int]:
    """The changed custom resources (components only echo their children), and how many are
    unchanged."""
    rows: dict[str, Resource] = {}
    ranks: dict[str, int] = {}
    unchanged = 0
    for step in digest.get("steps") or []:
        state = step.get("newState") or step.get("oldState") or {}
        if not state.get("custom"):  # the events leave `custom` out when false
            continue
        op = step.get("op", "")
        if op in ("same", "read", "refresh"):
            unchanged += op == "same"
            continue
        folded = OPS.get(op, op)
        urn = step["urn"]
        type_ = urn.split("::")[-2].split("$")[-1]
        if urn in ranks and RANK.get(op, 0) <= ranks[urn]:
            continue
        ranks[urn] = RANK.get(op, 0)
        res = Resource(folded, urn, type_, urn.split("::")[-1])
        res.replace_reasons = list(step.get("replaceReasons") or [])
        # The engine deletes first when the provider asked for it or a replace would clash
        # (delete-replaced comes before create-replacement among the steps).
        res.delete_before_replace = _deletes_first(digest, urn)
        res.changes = changes_of(step) if folded in ("update", "replace") else []
        rows[urn] = res
    return sorted(rows.values(), key=lambda r: (r.type, r.name)), unchanged


def _deletes_first(digest: dict, urn: str) -> bool:
    ops = [s.get("op") for s in digest.get("steps") or [] if s.get("urn") == urn]
    return (
        "delete-replaced" in ops
        and "create-replacement" in ops
        and ops.index("delete-replaced") < ops.index("create-replacement")
    )


# --- the engine's messages ----------------------------------------------------------------------


def messages(events: list[dict], stderr: str) -> tuple[list[str], list[str]]:
    """(errors, warnings): the engine's diagnostics and the policy violations."""
    errors: list[str] = []
    warnings: list[str] = []
    seen = set()

    def add(where: list[str], text: str) -> None:
        text = text.strip()
        if text and text not in seen:
            seen.add(text)
            where.append(text)

    for event in events:
        if diag := event.get("diagnosticEvent"):
            if diag.get("ephemeral"):
                continue
            text = _resource_prefix(diag.get("urn")) + _uncolor(diag.get("message", ""))
            if diag.get("severity") == "error":
                add(errors, text)
            elif diag.get("severity") == "warning":
                add(warnings, text)
        elif policy := event.get("policyEvent"):
            text = (
                f"policy {policy.get('policyPackName')}/{policy.get('policyName')} "
                f"({policy.get('enforcementLevel')}): "
                + _resource_prefix(policy.get("resourceUrn"))
                + _uncolor(policy.get("message", ""))
            )
            add(errors if policy.get("enforcementLevel") == "mandatory" else warnings, text)
    if stderr.strip() and not errors:  # the engine did not start (no stack, no backend, ...)
        add(errors, stderr)
    return errors, warnings


def _uncolor(text: str) -> str:
    return re.sub(r"<\{%[a-zA-Z]*%\}>|\x1b\[[0-9;]*m", "", text or "")


def _resource_prefix(urn: str | None) -> str:
    if not urn or "::" not in urn:
        return ""
    return f"{urn.split('::')[-2].split('$')[-1]} {urn.split('::')[-1]}: "


# --- writing the report -------------------------------------------------------------------------


def shown(value: Any) -> str:
    if value is MISSING:
        return "–"
    if value == SECRET:
        return SECRET
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
    if len(text) > VALUE_CHARS:
        text = text[: VALUE_CHARS - 1] + "…"
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def resource_section(res: Resource) -> list[str]:
    lines = [f"#### {SIGN.get(res.op, '')} {res.op} `{res.type}` `{res.name}`", ""]
    if res.op == "replace":
        why = ", ".join(f"`{r}`" for r in res.replace_reasons) or "the provider asked for it"
        how = (
            "deleted first, then created (delete-before-replace: the old and the new object "
            "cannot exist together)"
            if res.delete_before_replace
            else "the new one is created before the old one is deleted"
        )
        lines += [f"Replaced because of {why}; {how}.", ""]
    if res.changes:
        lines += ["| property | change | old | new |", "|---|---|---|---|"]
        lines += [
            f"| `{c.path}` | {c.kind} | {shown(c.old)} | {shown(c.new)} |" for c in res.changes
        ]
        lines.append("")
    return lines


def summary_lines(stack: str, rows: list[Resource], unchanged: int) -> list[str]:
    lines = [f"### `pulumi preview` of stack `{stack}`", ""]
    if not rows:
        return [*lines, f"No changes ({unchanged} resources unchanged).", ""]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.op] = counts.get(r.op, 0) + 1
    lines.append(
        ", ".join(f"{n} to {op}" for op, n in sorted(counts.items())) + f"; {unchanged} unchanged."
    )
    lines += ["", "| operation | type | name |", "|---|---|---|"]
    lines += [f"| {r.op} | `{r.type}` | `{r.name}` |" for r in rows]
    lines.append("")
    return lines


def failure_lines(errors: list[str], status: int) -> list[str]:
    lines = ["**The preview failed.** The engine said:", ""]
    lines += ["```", *(e.replace("```", "'''") for e in errors or [f"exit status {status}"])]
    return [*lines, "```", ""]


def warning_lines(warnings: list[str]) -> list[str]:
    if not warnings:
        return []
    noun = "warning" if len(warnings) == 1 else "warnings"
    lines = [f"<details><summary>The engine's {len(warnings)} {noun}</summary>", "", "```"]
    return [*lines, *(w.replace("```", "'''") for w in warnings), "```", "", "</details>", ""]


def scrub(text: str, secrets: list[str]) -> str:
    for value in sorted(secrets, key=len, reverse=True):
        if value:
            text = text.replace(value, SECRET)
    return text


def build(stack: str, status: int, digest: dict, errors, warnings) -> tuple[list, list, list]:
    """(head, sections, tail): the summary (or the failure), one block per changed resource,
    the warnings."""
    rows, unchanged = resources(digest)
    if status != 0:
        head = [f"### `pulumi preview` of stack `{stack}`", "", *failure_lines(errors, status)]
        if rows:
            head += ["Planned before the failure:", "", *summary_lines(stack, rows, unchanged)[2:]]
        return head, [], warning_lines(warnings)
    sections = [resource_section(r) for r in rows if r.changes or r.op == "replace"]
    head = summary_lines(stack, rows, unchanged)
    if sections:
        head += ["Property changes (secret values show as `[secret]`):", ""]
    return head, sections, warning_lines(warnings)


def render(head: list, sections: list, tail: list) -> str:
    return "\n".join([*head, *(line for s in sections for line in s), *tail]).rstrip() + "\n"


def cut(head: list, sections: list, tail: list, limit: int, where: str) -> str:
    """The report within `limit` characters: whole resource sections while they fit, then a
    line saying how many resources and property lines were left out. The engine's warnings go
    before any resource does."""
    full = render(head, sections, tail)
    if len(full) <= limit:
        return full
    for keep_tail in (True, False):
        ending = tail if keep_tail else ["The engine's warnings are in the full report.", ""]
        kept = []
        for section in sections:
            if len(render(head, [*kept, section], ending)) + 400 > limit:
                break
            kept.append(section)
        left = sections[len(kept) :]
        lines_left = sum(1 for s in left for line in s if line.startswith("| `"))
        note = [
            f"… cut here: the property changes of {len(left)} more resources "
            f"({lines_left} property lines) are not shown. {where}",
            "",
        ]
        text = render(head, kept, [*note, *ending])
        if len(text) <= limit:
            return text
    # Even the summary does not fit (thousands of resources): cut the text itself.
    short = render(head, [], [])
    left = len(full) - limit + 200
    return short[: limit - 200] + f"\n\n… cut here ({left} more characters). {where}\n"


def secret_config_values(stack: str, flags: list[str]) -> list[str]:
    """The plain text of the stack's secret config values: for a key whose stack file says
    which leaves are encrypted (`secure:`), those leaves; otherwise every leaf of the key (the
    same rule as the program's, components/settings/secret_leaves.py). Read with
    `pulumi config --show-secrets`, kept in memory."""
    proc = subprocess.run(
        ["pulumi", "config", "--json", "--show-secrets", "--stack", stack, *flags],
        capture_output=True,
        text=True,
    )
    try:
        shown = json.loads(proc.stdout) if proc.returncode == 0 else {}
    except ValueError:
        shown = {}
    named = flags[flags.index("--config-file") + 1] if "--config-file" in flags else None
    config_file = Path(named or f"Pulumi.{stack}.yaml")
    held, imports_env = (
        file_leaves(config_file.read_text()) if config_file.is_file() else ({}, True)
    )
    found: set[str] = set()
    for key, entry in shown.items():
        if not (isinstance(entry, dict) and entry.get("secret")):
            continue
        value = dict(leaves(entry["objectValue"] if "objectValue" in entry else entry.get("value")))
        known = held.get(key.split(":", 1)[1], {}) if key.startswith("pganalytics:") else {}
        if imports_env or set(known) != set(value):
            known = {}  # the file cannot tell: every leaf is secret
        for path, leaf in value.items():
            if known.get(path, SECURE) is SECURE and leaf not in (None, ""):
                text = str(leaf)
                found.add(text)
                if "\n" in text:  # a multi-line secret (a kubeconfig) also by its long words
                    found.update(re.findall(r"\S{16,}", text))
    # A short value would match inside unrelated words.
    return sorted(v for v in found if len(v) >= 4)


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("stack", "status", "events", "stderr"):
        parser.add_argument(name)
    parser.add_argument("--comment")
    parser.add_argument("--limit", type=int, default=60000)
    parser.add_argument("--run-url", default="")
    argv = sys.argv[1:]
    cut_at = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut_at])
    args.config_flags = argv[cut_at + 1 :]
    status = int(args.status)
    events = read_events(Path(args.events))
    stderr = Path(args.stderr).read_text()
    secrets = secret_config_values(args.stack, args.config_flags)
    errors, warnings = messages(events, stderr)
    head, sections, tail = build(args.stack, status, digest_of(events), errors, warnings)
    # Scrubbed line by line before anything is measured or cut.
    head, tail = [scrub(x, secrets) for x in head], [scrub(x, secrets) for x in tail]
    sections = [[scrub(x, secrets) for x in s] for s in sections]
    print(render(head, sections, tail), end="")
    if args.comment:
        where = "The full report is in the run's log and its `preview-{}` artifact{}.".format(
            args.stack, f" ({args.run_url})" if args.run_url else ""
        )
        Path(args.comment).write_text(cut(head, sections, tail, args.limit, where))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
