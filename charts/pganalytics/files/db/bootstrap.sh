#!/bin/sh
# Database bootstrap of pgAnalytics, run by the chart's bootstrap Job with the backend image
# (which ships psql and the app's migrations in MIGRATIONS_DIR).
#
# 1. waits for the server; creates the two databases when missing;
# 2. in ONE psql session on the metadata database, holding an advisory lock (so two runs
#    never interleave): roles and their passwords (re-applied on every run, so a rotated
#    Secret reaches PostgreSQL), extensions, each not-yet-applied migration once (recorded in
#    pganalytics_bootstrap.schema_migrations), least-privilege grants, first admin password.
#
# Env: PGHOST PGPORT PGUSER PGPASSWORD (a superuser or the external database's admin),
# PGSSLMODE, APP_DB METRICS_DB APP_USER APP_PASSWORD READER_USER, READER_PASSWORD (may be
# empty: the read-only role then has no password), ADMIN_PASSWORD, MIGRATIONS_DIR,
# OWNS_SERVER (true: the chart owns the server, so it also sets up pg_stat_statements and
# pg_monitor), SCRIPTS_DIR (this script's directory), WAIT_SECONDS (wait for the server).
set -eu

: "${APP_DB:?}" "${METRICS_DB:?}" "${APP_USER:?}" "${APP_PASSWORD:?}" "${READER_USER:?}"
: "${ADMIN_PASSWORD:?}" "${MIGRATIONS_DIR:?}" "${SCRIPTS_DIR:?}"
OWNS_SERVER="${OWNS_SERVER:-false}"
READER_PASSWORD="${READER_PASSWORD:-}"
export READER_PASSWORD
WAIT_SECONDS="${WAIT_SECONDS:-600}"
export OWNS_SERVER

psql_base() { psql -X -v ON_ERROR_STOP=1 -q "$@"; }

waited=0
until psql_base -d postgres -c 'SELECT 1' >/dev/null 2>&1; do
  if [ "$waited" -ge "$WAIT_SECONDS" ]; then
    echo "bootstrap: database server ${PGHOST:-local}:${PGPORT:-5432} not reachable after ${WAIT_SECONDS}s" >&2
    psql_base -d postgres -c 'SELECT 1' >&2 || true
    exit 1
  fi
  echo "bootstrap: waiting for ${PGHOST:-local}:${PGPORT:-5432}"
  sleep 3
  waited=$((waited + 3))
done

# CREATE DATABASE cannot run inside a transaction or a DO block: \gexec runs each generated
# statement on its own.
psql_base -d postgres -f "$SCRIPTS_DIR/databases.sql"

# On the chart's own server the collector reads pg_stat_statements in every database it monitors.
if [ "$OWNS_SERVER" = "true" ]; then
  for db in "$APP_DB" "$METRICS_DB"; do
    # (serialised like everything else: parallel CREATE EXTENSION IF NOT EXISTS can collide)
    psql_base -d "$db" \
      -c "SELECT pg_advisory_lock(hashtext('pganalytics-bootstrap-extensions'))" \
      -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' >/dev/null
  done
fi

# The whole session script: generated here because the migration list comes from the image.
session="$(mktemp "${TMPDIR:-/tmp}/bootstrap.XXXXXX.sql")"
trap 'rm -f "$session"' EXIT
{
  echo "\\i $SCRIPTS_DIR/begin.sql"
  echo "\\i $SCRIPTS_DIR/roles.sql"
  count=0
  for file in "$MIGRATIONS_DIR"/*.sql; do
    [ -e "$file" ] || continue
    name="$(basename "$file")"
    case "$name" in
      *[!A-Za-z0-9._-]*)
        echo "bootstrap: refusing migration file name '$name'" >&2
        exit 1
        ;;
    esac
    sum="$(sha256sum "$file" | cut -d' ' -f1)"
    count=$((count + 1))
    # A file is applied and recorded in one transaction, so a failed file leaves nothing
    # behind and the next run retries it cleanly; statements that refuse a transaction
    # block keep the file unwrapped.
    begin="BEGIN;"
    commit="COMMIT;"
    if grep -qiE 'INDEX[[:space:]]+CONCURRENTLY|^[[:space:]]*(VACUUM|ALTER[[:space:]]+SYSTEM|CREATE[[:space:]]+DATABASE)' "$file"; then
      begin=""
      commit=""
    fi
    cat <<EOSQL
\\set migration '$name'
\\set checksum '$sum'
\\i $SCRIPTS_DIR/migration-check.sql
\\if :pending
\\echo bootstrap: applying $name
RESET ALL;
$begin
\\i $file
RESET ALL;
\\i $SCRIPTS_DIR/migration-record.sql
$commit
\\endif
EOSQL
  done
  if [ "$count" -eq 0 ]; then
    echo "bootstrap: no migrations in $MIGRATIONS_DIR (is this the pgAnalytics backend image?)" >&2
    exit 1
  fi
  echo "\\i $SCRIPTS_DIR/grants.sql"
  echo "\\i $SCRIPTS_DIR/admin.sql"
} >"$session"

psql_base -d "$APP_DB" -f "$session"
echo "bootstrap: done"
