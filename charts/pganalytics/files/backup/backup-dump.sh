#!/bin/sh
# Step 1 of a backup (init container, database image): one pg_dump per database in custom
# format into $BACKUP_DIR/<stamp>/, with SHA256SUMS and backup.info beside the dumps, and the
# stamp in $BACKUP_DIR/.current for the upload step.
#
# Env: PGHOST PGPORT PGUSER PGPASSWORD PGSSLMODE (libpq), BACKUP_DATABASES (space-separated),
#      BACKUP_DIR, BACKUP_STAMP (optional, default: UTC time), BACKUP_LOCAL_RETENTION_DAYS
#      (optional: older stamp directories on the volume are removed).
set -eu

: "${BACKUP_DIR:?BACKUP_DIR is not set}"
: "${BACKUP_DATABASES:?BACKUP_DATABASES is not set}"
stamp="${BACKUP_STAMP:-$(date -u +%Y%m%dT%H%M%SZ)}"
case "$stamp" in
  *[!0-9A-Za-z_-]*|"") echo "backup-dump: invalid stamp '$stamp'" >&2; exit 2 ;;
esac
out="$BACKUP_DIR/$stamp"
mkdir -p "$out"

q() { psql -X -v ON_ERROR_STOP=1 -At -d "$1" -c "$2"; }

server_version="$(q postgres 'SHOW server_version')"
{
  echo "stamp=$stamp"
  echo "server_version=$server_version"
  echo "databases=$BACKUP_DATABASES"
} >"$out/backup.info.tmp"

for db in $BACKUP_DATABASES; do
  started="$(date +%s)"
  # The TimescaleDB version matters on restore: the target must create the same one first.
  tsdb="$(q "$db" "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")"
  echo "timescaledb.$db=$tsdb" >>"$out/backup.info.tmp"
  # Owners and grants stay in the dump: the restore (as a superuser) puts them back.
  pg_dump --format=custom --file="$out/$db.dump.tmp" "$db"
  mv "$out/$db.dump.tmp" "$out/$db.dump"
  echo "backup-dump: $db: $(wc -c <"$out/$db.dump") bytes in $(( $(date +%s) - started ))s" \
    "(timescaledb ${tsdb:-not installed})"
done

(
  cd "$out"
  for db in $BACKUP_DATABASES; do sha256sum "$db.dump"; done >SHA256SUMS
)
mv "$out/backup.info.tmp" "$out/backup.info"
printf '%s\n' "$stamp" >"$BACKUP_DIR/.current"

if [ -n "${BACKUP_LOCAL_RETENTION_DAYS:-}" ]; then
  find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d ! -name "$stamp" \
    -mtime +"$BACKUP_LOCAL_RETENTION_DAYS" -exec rm -rf {} +
fi
echo "backup-dump: $stamp complete"
