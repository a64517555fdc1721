#!/usr/bin/env bash
# The project's test command (README "Run the tests", and .ci/run). Installs what it needs,
# then runs pytest over every tier: lint/docs checks, chart, unit (Pulumi mocks), cluster.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh
export PATH="$ROOT/.tools/bin:$PATH"
# Two workers: CI has two cores and helm renders dominate. loadgroup keeps the cluster
# tier (one xdist_group) on one worker, so only one control plane starts.
exec .venv/bin/pytest -n 2 --dist loadgroup "$@"
