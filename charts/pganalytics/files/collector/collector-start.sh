#!/bin/sh
# Command of the collector container: registers with the API at every container start, then
# runs the image's own entrypoint and CMD.
#
#   collector-start.sh ENTRYPOINT CMD...   (the chart: /app/entrypoint.sh /usr/local/bin/pganalytics-collector)
#
# Why: pgAnalytics 3.3.0 keeps the collector's id and token in /var/lib/pganalytics
# (collector/src/main.cpp:250-251), an emptyDir that survives a container restart. Its entrypoint
# skips registration whenever collector.id is there (collector/entrypoint.sh:5-12, 75-81), so a
# container restarted more than 30 minutes after it registered (the API's collector token
# lifetime, backend/cmd/pganalytics-api/main.go:114) runs with an expired token: refreshing it
# needs a valid one, and every push gets 401 while the collector logs success. Registering
# again is safe: the API derives the collector id from the name (backend/internal/auth/
# service.go:149-152), so the id stays the same and a fresh token comes back.
#
# Pass 1 removes the saved id and token and runs ENTRYPOINT with `true` as its command: it
# writes /etc/pganalytics/collector.toml and registers. Pass 2 runs ENTRYPOINT with CMD: it
# finds the new id (its config now names the id the API knows, which the config pull uses) and
# starts collecting with the fresh token. A failed registration exits non-zero, so the kubelet
# restarts the container with back-off instead of running a collector whose pushes are refused.
# With AUTO_REGISTER other than true nothing is removed: the saved state is all there is.
#
# Env: AUTO_REGISTER, BACKEND_URL (as the image reads them); PGANALYTICS_STATE_DIR (default
# /var/lib/pganalytics, the path the collector binary uses; tests point it elsewhere).
set -eu

[ "$#" -ge 2 ] || { echo "collector-start: usage: collector-start.sh ENTRYPOINT CMD..." >&2; exit 2; }
entrypoint="$1"
shift
state="${PGANALYTICS_STATE_DIR:-/var/lib/pganalytics}"

if [ "${AUTO_REGISTER:-false}" = "true" ]; then
  rm -f "$state/collector.token" "$state/collector.id"
  echo "collector-start: registering with ${BACKEND_URL:-the API} (container start)"
  "$entrypoint" true
  if [ ! -s "$state/collector.id" ] || [ ! -s "$state/collector.token" ]; then
    echo "collector-start: registration failed (no collector.id / collector.token in $state);" \
      "exiting so the container is restarted and registers again" >&2
    exit 1
  fi
  echo "collector-start: registered as $(cat "$state/collector.id")"
fi
exec "$entrypoint" "$@"
