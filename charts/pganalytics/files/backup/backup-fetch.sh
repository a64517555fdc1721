#!/bin/sh
# Step 1 of a restore (rclone image): downloads one backup from $BACKUP_REMOTE into
# $RESTORE_DIR/<stamp>/ and verifies it. The bucket is not trusted: a backup is restored only
# when its backup.info (uploaded last, the completion marker) names its own stamp and only
# databases of $RESTORE_ALLOWED_DATABASES, its SHA256SUMS lists exactly their dumps, and every
# dump matches. Only those files are downloaded.
#
# RESTORE_STAMP "latest" is the newest backup that verifies, among the stamps of the dump's
# form (20260101T021500Z) not dated in the future (a planted 99991231T235959Z/ is skipped);
# a backup that does not verify is reported and skipped, never chosen.
#
# Env: BACKUP_REMOTE, RESTORE_DIR, RESTORE_STAMP ("latest" or a stamp such as
#      20260101T021500Z), RESTORE_ALLOWED_DATABASES (space-separated: the databases a backup
#      may name, the chart's two), RESTORE_CLOCK_SKEW_SECONDS (optional, default 3600: how far
#      in the future a stamp may be before it is refused).
set -eu

: "${BACKUP_REMOTE:?BACKUP_REMOTE is not set}"
: "${RESTORE_DIR:?RESTORE_DIR is not set}"
: "${RESTORE_ALLOWED_DATABASES:?RESTORE_ALLOWED_DATABASES is not set}"
stamp="${RESTORE_STAMP:-latest}"
remote="${BACKUP_REMOTE%/}"

say() { echo "backup-fetch: $*" >&2; }

# A stamp as backup-dump.sh writes it: UTC, yyyymmddThhmmssZ.
is_stamp() {
  case "$1" in
    [0-9][0-9][0-9][0-9][01][0-9][0-3][0-9]T[0-2][0-9][0-5][0-9][0-5][0-9]Z) return 0 ;;
  esac
  return 1
}

# A database name the chart may restore: [a-z_][a-z0-9_]{0,62} and one of the allowed ones.
allowed_database() {
  case "$1" in "" | [0-9]* | *[!a-z0-9_]*) return 1 ;; esac
  [ "${#1}" -le 63 ] || return 1
  for ok in $RESTORE_ALLOWED_DATABASES; do [ "$1" = "$ok" ] && return 0; done
  return 1
}

# Why the backup downloaded into $1 (stamp $2) cannot be trusted; nothing when it verifies.
problem() {
  dir="$1" want="$2"
  [ -s "$dir/backup.info" ] || { echo "no backup.info (an incomplete upload)"; return; }
  # Each line one of the keys backup-dump.sh writes, its value in that key's characters.
  bad="$(grep -v -E -e '^stamp=[0-9TZ]*$' -e '^server_version=[ -~]*$' -e '^databases=[a-z0-9_ ]*$' \
    -e '^timescaledb\.[a-z_][a-z0-9_]*=[0-9A-Za-z.-]*$' "$dir/backup.info" | head -n 1)"
  [ -z "$bad" ] || { echo "backup.info has an unexpected line"; return; }
  [ "$(sed -n 's/^stamp=//p' "$dir/backup.info")" = "$want" ] \
    || { echo "backup.info names another stamp than its directory"; return; }
  dbs="$(sed -n 's/^databases=//p' "$dir/backup.info")"
  [ -n "$dbs" ] || { echo "backup.info names no database"; return; }
  expected=""
  for db in $dbs; do
    allowed_database "$db" || { echo "backup.info names a database this release does not restore"; return; }
    expected="$expected$db.dump
"
  done
  [ -s "$dir/SHA256SUMS" ] || { echo "no SHA256SUMS"; return; }
  listed="$(sed -n 's/^[0-9a-f]\{64\}  \([a-z0-9_]*\.dump\)$/\1/p' "$dir/SHA256SUMS" | sort)"
  [ "$(grep -c '' "$dir/SHA256SUMS")" = "$(printf '%s' "$expected" | grep -c '')" ] \
    && [ "$listed" = "$(printf '%s' "$expected" | sort)" ] \
    || { echo "SHA256SUMS does not list exactly the dumps of its databases"; return; }
  (cd "$dir" && sha256sum -c SHA256SUMS >/dev/null 2>&1) \
    || echo "a dump does not match its SHA256SUMS"
}

# Downloads the files of backup $1 into $2: backup.info, SHA256SUMS and the dumps it names.
download() {
  rm -rf "$2" && mkdir -p "$2"
  rclone copyto --checksum --retries 3 "$remote/$1/backup.info" "$2/backup.info" 2>/dev/null || return 0
  rclone copyto --checksum --retries 3 "$remote/$1/SHA256SUMS" "$2/SHA256SUMS" 2>/dev/null || return 0
  for db in $(sed -n 's/^databases=//p' "$2/backup.info"); do
    allowed_database "$db" || return 0
    rclone copyto --checksum --retries 3 "$remote/$1/$db.dump" "$2/$db.dump" || return 0
  done
}

# No backup is dated after now (plus the allowed clock skew): such a stamp was planted.
now="$(date -u +%s)"
limit="$(date -u -d "@$((now + ${RESTORE_CLOCK_SKEW_SECONDS:-3600}))" +%Y%m%dT%H%M%SZ)"
in_future() { [ "$(printf '%s\n%s\n' "$1" "$limit" | sort | tail -n 1)" != "$limit" ]; }

# The stamps to try for "latest", newest first.
candidates() {
  rclone lsf --dirs-only "$remote/" | sed 's#/$##' | while read -r dir; do
    if ! is_stamp "$dir"; then
      say "skipping $dir/: not a backup stamp"
    elif in_future "$dir"; then
      say "skipping $dir/: dated in the future (after $limit)"
    else
      echo "$dir"
    fi
  done | sort -r
}

mkdir -p "$RESTORE_DIR"
work="$RESTORE_DIR/.download"
if [ "$stamp" = latest ]; then
  chosen=""
  for candidate in $(candidates); do
    download "$candidate" "$work"
    why="$(problem "$work" "$candidate")"
    if [ -z "$why" ]; then
      chosen="$candidate"
      break
    fi
    say "skipping $candidate: $why"
  done
  [ -n "$chosen" ] || { say "no backup under $remote verifies"; rm -rf "$work"; exit 1; }
  stamp="$chosen"
else
  is_stamp "$stamp" || { say "invalid stamp '$stamp'"; exit 2; }
  ! in_future "$stamp" || { say "$stamp is dated in the future (after $limit): not a backup"; exit 1; }
  download "$stamp" "$work"
  why="$(problem "$work" "$stamp")"
  [ -z "$why" ] || { say "$remote/$stamp cannot be restored: $why"; rm -rf "$work"; exit 1; }
fi

rm -rf "${RESTORE_DIR:?}/$stamp"
mv "$work" "$RESTORE_DIR/$stamp"
printf '%s\n' "$stamp" >"$RESTORE_DIR/.current"
echo "backup-fetch: $stamp downloaded and verified"
