#!/bin/sh
# Step 2 of a backup (main container, rclone image): checks the dumps against SHA256SUMS,
# uploads them to $BACKUP_REMOTE/<stamp>/ and verifies each object's checksum as the object
# store reports it. backup.info goes last: a backup without it is incomplete. Any mismatch or
# failed upload exits non-zero, so the Job fails and shows it.
#
# Write once: a stamp that already holds an object is never written again (the store may also
# refuse it: the chart sends `If-None-Match: *` to S3, whose bucket policy requires it).
#
# Env: BACKUP_DIR, BACKUP_REMOTE (rclone path, e.g. "backup:bucket/prefix"; the remote itself
#      is configured with RCLONE_CONFIG_BACKUP_* variables), BACKUP_VERIFY (checksum: the MD5
#      the store reports must match; download: each object is also read back and its SHA-256
#      compared), RCLONE_* (optional rclone flags).
set -eu

case "${BACKUP_VERIFY:-checksum}" in
  checksum|download) ;;
  *) echo "backup-upload: BACKUP_VERIFY must be checksum or download (got '$BACKUP_VERIFY')" >&2; exit 2 ;;
esac
: "${BACKUP_DIR:?BACKUP_DIR is not set}"
: "${BACKUP_REMOTE:?BACKUP_REMOTE is not set}"
[ -s "$BACKUP_DIR/.current" ] || { echo "backup-upload: no dump to upload ($BACKUP_DIR/.current missing)" >&2; exit 1; }
stamp="$(cat "$BACKUP_DIR/.current")"
src="$BACKUP_DIR/$stamp"
dest="${BACKUP_REMOTE%/}/$stamp"

# The dumps must still be what pg_dump wrote (a damaged scratch volume must not be uploaded).
(cd "$src" && sha256sum -c SHA256SUMS >/dev/null) || {
  echo "backup-upload: $src does not match its SHA256SUMS; nothing uploaded" >&2
  exit 1
}

existing="$(rclone lsf "$dest/" 2>/dev/null | head -n 1)" || existing=""
if [ -n "$existing" ]; then
  echo "backup-upload: $dest already holds a backup; refusing to write over it" >&2
  exit 1
fi

upload() {
  name="$1"
  local_md5="$(md5sum "$src/$name" | cut -d' ' -f1)"
  started="$(date +%s)"
  # --checksum: rclone also compares the hash it computed with the one the store returns.
  rclone copyto --checksum --retries 3 --low-level-retries 10 "$src/$name" "$dest/$name"
  remote_md5="$(rclone md5sum "$dest/$name" | cut -d' ' -f1)"
  if [ -z "$remote_md5" ] || [ "$remote_md5" != "$local_md5" ]; then
    echo "backup-upload: checksum mismatch for $dest/$name: local md5 $local_md5," \
      "object store md5 '${remote_md5:-none}'" >&2
    exit 1
  fi
  if [ "${BACKUP_VERIFY:-checksum}" = download ]; then
    local_sha="$(sha256sum "$src/$name" | cut -d' ' -f1)"
    remote_sha="$(rclone cat "$dest/$name" | sha256sum | cut -d' ' -f1)"
    if [ "$remote_sha" != "$local_sha" ]; then
      echo "backup-upload: $dest/$name read back with sha256 $remote_sha, expected $local_sha" >&2
      exit 1
    fi
  fi
  echo "backup-upload: $name: $(wc -c <"$src/$name") bytes, md5 $local_md5 verified," \
    "$(( $(date +%s) - started ))s"
}

for dump in $(cut -d' ' -f3 "$src/SHA256SUMS"); do
  upload "$dump"
done
upload SHA256SUMS
upload backup.info
echo "backup-upload: $dest complete"
