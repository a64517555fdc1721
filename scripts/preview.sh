#!/usr/bin/env bash
# The pull-request preview: a non-interactive `pulumi preview` of STACK, printed to stdout as a
# Markdown report (scripts/preview_report.py): every changed resource with its operation, the
# reason of each replacement (and whether the old object goes first), and each changed property
# with its old and new value (secrets as [secret]). A failed preview prints the engine's error
# messages and the policy violations instead, scrubbed of the stack's secret config values,
# and exits non-zero. The engine's own output goes to stderr (the run's log).
#
# Usage: scripts/preview.sh STACK [extra `pulumi preview` flags, e.g. --policy-pack policy]
# Env:   PREVIEW_COMMENT=FILE also writes the report cut to a pull-request comment's size
#        (PREVIEW_COMMENT_LIMIT characters, default 60000), saying what was left out; RUN_URL
#        is named there as the place of the full report. The usual PULUMI_* variables
#        (PULUMI_BACKEND_URL, PULUMI_ACCESS_TOKEN or PULUMI_CONFIG_PASSPHRASE(_FILE), ...);
#        `pulumi` and its plugins on PATH.
# Called by the preview workflow (one run per stack) and by tests/e2e.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -ge 1 && -n "$1" && "$1" != -* ]] || { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
stack="$1"; shift
command -v pulumi >/dev/null || { echo "error: no 'pulumi' on PATH" >&2; exit 1; }
python="$ROOT/.venv/bin/python"; [[ -x "$python" ]] || python=python3
# The stack's secrets provider as its state records it, when the stack file has none.
export PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER="${PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER:-true}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# `pulumi config` takes the same --config-file as the preview.
config_flags=()
args=("$@")
for i in "${!args[@]}"; do
  case "${args[$i]}" in
    --config-file) config_flags=(--config-file "${args[$((i + 1))]}") ;;
    --config-file=*) config_flags=("${args[$i]}") ;;
  esac
done

status=0
# Streamed: one engine event per line, the policy violations included (the --json digest leaves
# them out).
(cd "$ROOT" && PULUMI_ENABLE_STREAMING_JSON_PREVIEW=true pulumi preview --stack "$stack" --json \
    --non-interactive "$@") >"$work/events.jsonl" 2>"$work/stderr.txt" || status=$?
# The engine's own words go to the log as well: the report may be cut, the log never is.
cat "$work/stderr.txt" >&2

# The report scrubs the stack's secret config values from the engine's messages (property
# values are [secret] already); it reads them with `pulumi config`, in memory only.
comment=()
[[ -z "${PREVIEW_COMMENT:-}" ]] || comment=(--comment "$PREVIEW_COMMENT" --limit "${PREVIEW_COMMENT_LIMIT:-60000}" --run-url "${RUN_URL:-}")
(cd "$ROOT" && "$python" scripts/preview_report.py "$stack" "$status" "$work/events.jsonl" \
  "$work/stderr.txt" "${comment[@]}" -- "${config_flags[@]}")
exit "$status"
