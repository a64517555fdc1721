#!/bin/sh
# Step 1 of a restore (rclone image): downloads one backup from $BACKUP_REMOTE into
# $RESTORE_DIR/<stamp>/ and checks it against its SHA256SUMS.
#
# Env: BACKUP_REMOTE, RESTORE_DIR, RESTORE_STAMP ("latest" or a stamp such as
#      20260101T021500Z; "latest" is the newest complete backup, i.e. one with backup.info).
set -eu

: "${BACKUP_REMOTE:?BACKUP_REMOTE is not set}"
: "${RESTORE_DIR:?RESTORE_DIR is not set}"
stamp="${RESTORE_STAMP:-latest}"
remote="${BACKUP_REMOTE%/}"

if [ "$stamp" = latest ]; then
  stamp=""
  # Stamps sort by time; take the newest that finished uploading.
  for dir in $(rclone lsf --dirs-only "$remote/" | sed 's#/$##' | sort -r); do
    if rclone lsf "$remote/$dir/backup.info" >/dev/null 2>&1 \
      && [ -n "$(rclone lsf "$remote/$dir/backup.info")" ]; then
      stamp="$dir"
      break
    fi
  done
  [ -n "$stamp" ] || { echo "backup-fetch: no complete backup under $remote" >&2; exit 1; }
fi
case "$stamp" in
  *[!0-9A-Za-z_-]*) echo "backup-fetch: invalid stamp '$stamp'" >&2; exit 2 ;;
esac

dest="$RESTORE_DIR/$stamp"
mkdir -p "$dest"
rclone copy --checksum --retries 3 "$remote/$stamp" "$dest"
[ -s "$dest/backup.info" ] || { echo "backup-fetch: $remote/$stamp is incomplete (no backup.info)" >&2; exit 1; }
(cd "$dest" && sha256sum -c SHA256SUMS) || {
  echo "backup-fetch: $remote/$stamp does not match its SHA256SUMS" >&2
  exit 1
}
printf '%s\n' "$stamp" >"$RESTORE_DIR/.current"
echo "backup-fetch: $stamp downloaded and verified"
