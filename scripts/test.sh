#!/usr/bin/env bash
# The project's test command (README "Run the tests", and .ci/run). Installs what it needs,
# then runs pytest over every tier: lint/docs checks, chart, unit (Pulumi mocks), backup,
# cluster, e2e (the real Pulumi engine on the local control plane).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh
# The backup tier (tests/backup) runs rclone and the Azurite emulator as processes.
scripts/backup-test-tools.sh
# Tests of the chart's SQL and of backup/restore run a throwaway PostgreSQL server
# (tests/support/postgres.py) from the machine's packages.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "==> installing the PostgreSQL server for the tests (apt-get install postgresql)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } \
      || { echo "error: could not install PostgreSQL with apt-get" >&2; exit 1; }
  else
    echo "error: the tests need a PostgreSQL server (initdb, pg_ctl). Install it (e.g. 'sudo apt-get install postgresql') and run again." >&2
    exit 1
  fi
fi
export PATH="$ROOT/.tools/bin:$PATH"
# The whole suite (CI): start building the Go tools the cluster and e2e tiers need now, in the
# background, so that a cold build (the engine's plugins take tens of minutes on 2 cores)
# overlaps the tiers that need none. The tiers' fixtures run the same idempotent command and
# wait on its lock; a failure here is reported by them, with build.sh's output.
if [[ $# -eq 0 || " $* " == *" tests/e2e"* || " $* " == *" tests/cluster"* ]]; then
  mkdir -p .pytest_cache
  tools/build.sh all pulumi pulumi-plugins >.pytest_cache/tools-build.log 2>&1 &
fi
# The e2e tier's modules are ordered stories on one stack each (deploy, change, rotate, destroy):
# xdist may split or reorder a group, so that tier runs on its own, serially, in file order.
if [[ $# -eq 0 ]]; then
  # Two workers: CI has two cores and helm renders dominate. loadgroup keeps the cluster tier
  # (one xdist_group) on one worker, so it starts one control plane.
  .venv/bin/pytest -n 2 --dist loadgroup --ignore=tests/e2e
  exec .venv/bin/pytest -p no:xdist tests/e2e
fi
if [[ " $* " == *" tests/e2e"* ]]; then
  exec .venv/bin/pytest -p no:xdist "$@"
fi
exec .venv/bin/pytest -n 2 --dist loadgroup "$@"
