#!/usr/bin/env bash
# The project's test command (README "Tests", and .ci/run). Installs what it needs, then runs
# pytest over every tier: project (lint/docs checks), chart, unit (Pulumi mocks), backup,
# cluster, e2e (the real Pulumi engine on the local control plane).
#
# Usage: scripts/test.sh [tests/<tier>...] [pytest options]
#   With no path, every tier runs, in two pytest runs (the e2e tier on its own, see below);
#   the second runs even when the first failed, and the exit status is non-zero when any
#   failed. A per-tier summary ends the output, so one failing tier never hides another.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh dev || exit 1
export PATH="$ROOT/.tools/bin:$PATH"

# What the tiers run besides Python; a failure here is reported and the tests that need the
# missing tool then fail with its name (they never skip), so the other tiers still report.
prerequisite_failures=()
# The backup tier (tests/backup) runs rclone and the Azurite emulator as processes.
scripts/backup-test-tools.sh || prerequisite_failures+=("scripts/backup-test-tools.sh (the backup tier needs rclone and Azurite)")
# Tests of the chart's SQL and of backup/restore run a throwaway PostgreSQL server
# (tests/support/postgres.py) from the machine's packages.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "==> installing the PostgreSQL server for the tests (apt-get install postgresql)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } \
      || prerequisite_failures+=("apt-get install postgresql")
  else
    echo "warning: the tests need a PostgreSQL server (initdb, pg_ctl). Install it (e.g. 'sudo apt-get install postgresql'); the tests that use it fail until then." >&2
    prerequisite_failures+=("a PostgreSQL server (not installed)")
  fi
fi

paths=() options=()
for arg in "$@"; do
  if [[ "$arg" == tests/* || "$arg" == ./tests/* ]]; then paths+=("$arg"); else options+=("$arg"); fi
done
wants() { [[ ${#paths[@]} -eq 0 || " ${paths[*]} " == *" tests/$1"* || " ${paths[*]} " == *" ./tests/$1"* ]]; }

# The Go tools the cluster and e2e tiers need are built now, in the background, so that a cold
# build (the engine's plugins take tens of minutes on 2 cores where they are built from
# source) overlaps the tiers that need none. The tiers' fixtures run the same idempotent
# command and wait on its lock; a failure here is reported by them, with build.sh's output.
mkdir -p .pytest_cache
if wants e2e || wants cluster; then
  tools/build.sh all pulumi pulumi-plugins >.pytest_cache/tools-build.log 2>&1 &
fi

junit=()
status=0
run() {  # run <name> <pytest args...>: one pytest run, its JUnit report kept for the summary
  local name="$1"; shift
  local report=".pytest_cache/junit-$name.xml"
  rm -f "$report"
  .venv/bin/pytest --junitxml="$report" "$@" || status=1
  junit+=("$report")
}

# The e2e tier's modules are ordered stories on one stack each (deploy, change, rotate, destroy):
# xdist may split or reorder a group, so that tier runs on its own, serially, in file order.
# The others: two workers (CI has two cores and helm renders dominate); loadgroup keeps the
# cluster tier (one xdist_group) on one worker, so it starts one control plane.
if [[ ${#paths[@]} -eq 0 ]]; then
  run tiers -n 2 --dist loadgroup --ignore=tests/e2e "${options[@]}"
  run e2e -p no:xdist tests/e2e "${options[@]}"
else
  others=() e2e=()
  for p in "${paths[@]}"; do
    if [[ "$p" == *tests/e2e* ]]; then e2e+=("$p"); else others+=("$p"); fi
  done
  [[ ${#others[@]} -eq 0 ]] || run tiers -n 2 --dist loadgroup "${others[@]}" "${options[@]}"
  [[ ${#e2e[@]} -eq 0 ]] || run e2e -p no:xdist "${e2e[@]}" "${options[@]}"
fi

.venv/bin/python scripts/tier_summary.py "${junit[@]}" "${prerequisite_failures[@]/#/--prerequisite=}" || status=1
exit "$status"
