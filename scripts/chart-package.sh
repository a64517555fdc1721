#!/usr/bin/env bash
# `make chart`: packages charts/pganalytics into dist/pganalytics-<version>.tgz, after
# `helm lint --strict` with every shipped values file. The chart workflow
# (.github/workflows/chart.yml) runs it with the pushed tag, which must be v<Chart.yaml version>,
# then pushes the package to an OCI registry:
#   helm push dist/pganalytics-<version>.tgz oci://ghcr.io/<owner>/charts
# and users install it with
#   helm install pganalytics oci://ghcr.io/<owner>/charts/pganalytics --version <version>
#
# Usage: scripts/chart-package.sh [TAG]   (prints the package's path on the last line)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CHART=charts/pganalytics
command -v helm >/dev/null || { echo "error: no helm on PATH (scripts/bootstrap.sh tools installs it)" >&2; exit 1; }

version="$(sed -n 's/^version: *//p' "$CHART/Chart.yaml" | tr -d '"')"
if [[ -n "${1:-}" && "$1" != "v$version" ]]; then
  echo "error: tag '$1' does not match the chart: $CHART/Chart.yaml has version $version (tag v$version)." >&2
  exit 1
fi
for values in "$CHART"/values-*.yaml; do
  helm lint --strict "$CHART" -f "$values" >/dev/null \
    || { helm lint --strict "$CHART" -f "$values"; exit 1; }
done
mkdir -p dist
helm package "$CHART" --destination dist >&2
echo "dist/pganalytics-$version.tgz"
