#!/bin/sh
# Step 2 of a restore (database image): restores each database of the backup in
# $RESTORE_DIR/<stamp>/ with pg_restore. A database that holds tables is refused unless
# RESTORE_DROP_EXISTING=true. Databases that had TimescaleDB get the same extension version
# first, and the restore runs between timescaledb_pre_restore() and timescaledb_post_restore().
#
# Every database name, from backup.info or RESTORE_DATABASES, is checked before anything is
# dropped: [a-z_][a-z0-9_]{0,62} and one of RESTORE_ALLOWED_DATABASES (never postgres or a
# template), and a TimescaleDB version only digits, letters, '.' and '-'.
#
# Env: PGHOST PGPORT PGUSER PGPASSWORD PGSSLMODE (libpq, a superuser), RESTORE_DIR,
#      RESTORE_OWNER (role that owns the restored databases), RESTORE_ALLOWED_DATABASES
#      (space-separated: the only databases this release restores), RESTORE_DATABASES
#      (optional subset), RESTORE_DROP_EXISTING (true|false, default false).
set -eu

: "${RESTORE_DIR:?RESTORE_DIR is not set}"
: "${RESTORE_OWNER:?RESTORE_OWNER is not set}"
: "${RESTORE_ALLOWED_DATABASES:?RESTORE_ALLOWED_DATABASES is not set}"
[ -s "$RESTORE_DIR/.current" ] || { echo "backup-restore: nothing fetched ($RESTORE_DIR/.current missing)" >&2; exit 1; }
stamp="$(cat "$RESTORE_DIR/.current")"
src="$RESTORE_DIR/$stamp"
(cd "$src" && sha256sum -c SHA256SUMS >/dev/null) || { echo "backup-restore: $src does not match its SHA256SUMS" >&2; exit 1; }

info() { sed -n "s/^$1=//p" "$src/backup.info"; }
q() { psql -X -v ON_ERROR_STOP=1 -At -d "$1" -c "$2"; }
ident() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
literal() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }

refuse() { echo "backup-restore: $*; nothing was restored" >&2; exit 1; }

databases="${RESTORE_DATABASES:-$(info databases)}"
[ -n "$databases" ] || refuse "backup $stamp names no database"
for db in $databases; do
  case "$db" in
    "" | [0-9]* | *[!a-z0-9_]* | postgres | template0 | template1) refuse "invalid database name '$db'" ;;
  esac
  [ "${#db}" -le 63 ] || refuse "invalid database name '$db'"
  case " $RESTORE_ALLOWED_DATABASES " in
    *" $db "*) ;;
    *) refuse "database '$db' is not one this release restores ($RESTORE_ALLOWED_DATABASES)" ;;
  esac
  case "$(info "timescaledb\\.$db")" in
    *[!0-9A-Za-z.-]*) refuse "invalid TimescaleDB version for $db in backup.info" ;;
  esac
  [ -f "$src/$db.dump" ] || refuse "backup $stamp has no dump of $db"
done

for db in $databases; do
  exists="$(q postgres "SELECT 1 FROM pg_database WHERE datname = $(literal "$db")")"
  if [ -n "$exists" ]; then
    tables="$(q "$db" "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema')
      AND n.nspname NOT LIKE '\_timescaledb%' AND n.nspname <> 'timescaledb_information'")"
    if [ "$tables" != 0 ] && [ "${RESTORE_DROP_EXISTING:-false}" != true ]; then
      echo "backup-restore: database $db holds $tables tables; refusing to restore over it." \
        "Set RESTORE_DROP_EXISTING=true to drop and recreate it." >&2
      exit 1
    fi
    q postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = $(literal "$db") AND pid <> pg_backend_pid()" >/dev/null
    q postgres "DROP DATABASE $(ident "$db")"
  fi
  started="$(date +%s)"
  q postgres "CREATE DATABASE $(ident "$db") OWNER $(ident "$RESTORE_OWNER")"
  tsdb="$(info "timescaledb\\.$db")"
  if [ -n "$tsdb" ]; then
    # Same extension version as the dump, then restore mode (TimescaleDB's documented steps).
    q "$db" "CREATE EXTENSION IF NOT EXISTS timescaledb VERSION $(literal "$tsdb")"
    q "$db" "SELECT timescaledb_pre_restore()" >/dev/null
  fi
  # As a superuser, with the owners and grants of the dump (the roles must exist: the chart's
  # database bootstrap creates them).
  pg_restore --exit-on-error --dbname="$db" "$src/$db.dump"
  if [ -n "$tsdb" ]; then
    q "$db" "SELECT timescaledb_post_restore()" >/dev/null
  fi
  q "$db" "ANALYZE" >/dev/null
  echo "backup-restore: $db restored from $stamp in $(( $(date +%s) - started ))s" \
    "(timescaledb ${tsdb:-not installed})"
done
echo "backup-restore: $stamp complete"
