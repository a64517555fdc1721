#!/bin/sh
# Backend init container (backend image, app role): waits until every migration of this image
# is recorded as applied and the app role logs in with the password of the Secret, so the API
# never serves a missing or older schema, on install and on upgrade.
set -eu
: "${MIGRATIONS_DIR:?}"
expected=0
list=""
for file in "$MIGRATIONS_DIR"/*.sql; do
  [ -e "$file" ] || continue
  name="$(basename "$file")"
  expected=$((expected + 1))
  list="${list:+$list,}'$name'"
done
if [ "$expected" -eq 0 ]; then
  echo "wait-for-schema: no migrations in $MIGRATIONS_DIR" >&2
  exit 1
fi
until applied="$(psql -X -At -c "SELECT count(*) FROM pganalytics_bootstrap.schema_migrations WHERE version IN ($list)" 2>/dev/null)" \
  && [ "$applied" = "$expected" ]; do
  echo "wait-for-schema: ${applied:-no answer} of $expected migrations applied; waiting for the bootstrap Job"
  sleep 5
done
echo "wait-for-schema: all $expected migrations applied"
