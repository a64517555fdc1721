#!/bin/sh
# Database bootstrap of pgAnalytics, run by the chart's bootstrap Job with the backend image
# (which ships psql and the app's migrations in MIGRATIONS_DIR).
#
# As the administrative role (PGUSER: the superuser, or the external server's admin), only
# what needs it:
# 1. waits for the server; creates the two databases when missing; creates the extensions the
#    migrations use (EXTENSIONS: CREATE EXTENSION of an untrusted extension needs a superuser)
#    and, on the chart's own server, pg_stat_statements;
# 2. in ONE session on the metadata database, holding an advisory lock (so two runs never
#    interleave): the roles and their passwords (re-applied on every run, so a rotated Secret
#    reaches PostgreSQL), database privileges, the owner role's hold on the app's schema, and
#    a login for the owner valid for this run only.
# As the owner role (OWNER_USER), in a session that the locked one starts and waits for: each
# not-yet-applied migration once (recorded in pganalytics_bootstrap.schema_migrations), the
# least-privilege grants, the first admin password. Then the owner can no longer log in.
#
# Env: PGHOST PGPORT PGUSER PGPASSWORD PGSSLMODE, APP_DB METRICS_DB, APP_USER APP_PASSWORD,
# READER_USER, READER_PASSWORD (may be empty: the read-only role then has no password),
# MONITOR_USER MONITOR_PASSWORD (the collector's role), OWNER_USER, ADMIN_PASSWORD,
# EXTENSIONS (space-separated), MIGRATIONS_DIR, OWNS_SERVER (true: the chart owns the server,
# so it also sets up pg_stat_statements), SCRIPTS_DIR (this script's directory), WAIT_SECONDS.
set -eu

: "${APP_DB:?}" "${METRICS_DB:?}" "${APP_USER:?}" "${APP_PASSWORD:?}" "${READER_USER:?}"
: "${MONITOR_USER:?}" "${MONITOR_PASSWORD:?}" "${OWNER_USER:?}"
: "${ADMIN_PASSWORD:?}" "${MIGRATIONS_DIR:?}" "${SCRIPTS_DIR:?}"
OWNS_SERVER="${OWNS_SERVER:-false}"
READER_PASSWORD="${READER_PASSWORD:-}"
EXTENSIONS="${EXTENSIONS:-}"
WAIT_SECONDS="${WAIT_SECONDS:-600}"
export OWNS_SERVER READER_PASSWORD

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

# Extensions, serialised like everything else (parallel CREATE EXTENSION IF NOT EXISTS can
# collide): those the migrations create, where the server has them, in the metadata database;
# on the chart's own server pg_stat_statements in both, which the collector reads.
for ext in $EXTENSIONS; do
  case "$ext" in
    *[!a-z0-9_-]*) echo "bootstrap: refusing extension name '$ext'" >&2; exit 1 ;;
  esac
done
ext_sql() {
  echo "SELECT pg_advisory_lock(hashtext('pganalytics-bootstrap-extensions'));"
  for ext in "$@"; do
    # An admin role that may not create it (a managed server) warns: create it there yourself.
    printf '%s\n' "SELECT format('DO \$x\$ BEGIN CREATE EXTENSION IF NOT EXISTS %I; EXCEPTION WHEN insufficient_privilege THEN RAISE WARNING %L; END \$x\$', name, 'bootstrap: ' || current_user || ' may not create extension ' || name || ': create it as a superuser') FROM pg_available_extensions WHERE name = '$ext' \\gexec"
  done
}
stats=""
[ "$OWNS_SERVER" = "true" ] && stats="pg_stat_statements"
# shellcheck disable=SC2086  # one word per extension
ext_sql $EXTENSIONS $stats | psql_base -d "$APP_DB" >/dev/null
if [ -n "$stats" ]; then
  ext_sql $stats | psql_base -d "$METRICS_DB" >/dev/null
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/bootstrap.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# The owner's login of this run: random, known only to this process, dropped afterwards.
OWNER_PASSWORD="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
export OWNER_PASSWORD

# The owner's session: generated here because the migration list comes from the image.
role_files=""
{
  echo "\\i $SCRIPTS_DIR/owner-begin.sql"
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
    # A file that creates roles needs CREATEROLE for the owner while it is pending.
    if grep -qiE '(CREATE|ALTER|DROP)[[:space:]]+(ROLE|USER|GROUP)[[:space:]]' "$file"; then
      role_files="${role_files:+$role_files,}$name"
    fi
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
} >"$work/owner.sql"
ROLE_MIGRATIONS="$role_files"
export ROLE_MIGRATIONS

# The administrative session: holds the lock while the owner's session (psql's \!) runs.
cat >"$work/admin.sql" <<EOSQL
\\i $SCRIPTS_DIR/begin.sql
\\i $SCRIPTS_DIR/roles.sql
\\i $SCRIPTS_DIR/databases-grants.sql
\\i $SCRIPTS_DIR/owner.sql
\\! PGUSER="\$OWNER_USER" PGPASSWORD="\$OWNER_PASSWORD" psql -X -v ON_ERROR_STOP=1 -q -d "\$APP_DB" -f "$work/owner.sql"; echo \$? >"$work/owner.rc"
\\i $SCRIPTS_DIR/owner-done.sql
EOSQL
psql_base -d "$APP_DB" -f "$work/admin.sql"
rc="$(cat "$work/owner.rc" 2>/dev/null || echo none)"
if [ "$rc" != 0 ]; then
  echo "bootstrap: the owner's session (migrations, grants, first admin) failed (exit $rc)" >&2
  exit 1
fi
echo "bootstrap: done"
