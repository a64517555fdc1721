#!/usr/bin/env bash
# The pull-request preview: a non-interactive `pulumi preview` of STACK, printed to stdout as a
# Markdown report whose body is the object-level diff, one table row per changed resource
# (operation, resource type, name). Exits non-zero when the preview fails, after printing the
# engine's error messages in the report.
#
# Usage: scripts/preview.sh STACK [extra `pulumi preview` flags, e.g. --policy-pack policy]
# Env:   the usual PULUMI_* variables (PULUMI_BACKEND_URL, PULUMI_ACCESS_TOKEN or
#        PULUMI_CONFIG_PASSPHRASE(_FILE), ...); `pulumi` and its plugins on PATH.
# Called by the preview workflow (one run per stack) and by tests/e2e.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -ge 1 && -n "$1" && "$1" != -* ]] || { sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
stack="$1"; shift
command -v pulumi >/dev/null || { echo "error: no 'pulumi' on PATH" >&2; exit 1; }
python="$ROOT/.venv/bin/python"; [[ -x "$python" ]] || python=python3

out="$(mktemp)"; err="$(mktemp)"
trap 'rm -f "$out" "$err"' EXIT
status=0
(cd "$ROOT" && pulumi preview --stack "$stack" --json --non-interactive "$@") >"$out" 2>"$err" || status=$?

"$python" - "$stack" "$status" "$out" "$err" <<'PY'
import json, sys

stack, status, out_file, err_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
raw = open(out_file).read()
stderr = open(err_file).read().strip()
try:
    report = json.loads(raw) if raw.strip() else {}
except ValueError:
    report = {}

print(f"### `pulumi preview` of stack `{stack}`\n")

# One row per object: a replacement shows as create-replacement + replace + delete-replaced.
# Components (the chart, the program's own groupings) are not objects: their steps only echo
# their children's.
RANK = {"replace": 3, "create-replacement": 2, "delete-replaced": 2}
rows: dict[str, tuple[str, str, str]] = {}
unchanged = 0
for step in report.get("steps") or []:
    state = step.get("newState") or step.get("oldState") or {}
    if state.get("custom") is False:
        continue
    op = step.get("op", "")
    urn = step["urn"]
    if op == "same":
        unchanged += 1
        continue
    type_ = urn.split("::")[-2].split("$")[-1]
    name = urn.split("::")[-1]
    if op in ("create-replacement", "delete-replaced"):
        op = "replace"
    prev = rows.get(urn)
    if prev is None or RANK.get(op, 1) > RANK.get(prev[0], 1):
        rows[urn] = (op, type_, name)

if status != 0:
    print("**The preview failed.** The engine said:\n")
    messages = [
        d.get("message", "").strip()
        for d in report.get("diagnostics") or []
        if d.get("severity") == "error" and d.get("message", "").strip()
    ]
    text = "\n\n".join(messages) or stderr or raw.strip() or f"exit status {status}"
    print("```\n" + text.replace("```", "'''") + "\n```")
    sys.exit(0)

if not rows:
    print(f"No changes ({unchanged} resources unchanged).")
    sys.exit(0)
counts: dict[str, int] = {}
for op, _, _ in rows.values():
    counts[op] = counts.get(op, 0) + 1
print(", ".join(f"{n} to {op}" for op, n in sorted(counts.items())) + f"; {unchanged} unchanged.\n")
print("| operation | type | name |")
print("|---|---|---|")
for op, type_, name in sorted(rows.values(), key=lambda r: (r[1], r[2], r[0])):
    print(f"| {op} | `{type_}` | `{name}` |")
PY
exit "$status"
