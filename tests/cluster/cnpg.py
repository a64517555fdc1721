"""The CloudNativePG CRDs (tests/cluster/fixtures/cnpg-crds.yaml: CloudNativePG v1.30.0 and the
Barman Cloud plugin's ObjectStore v0.13.0, the versions components/platform.py installs) for the
local kube-apiserver of the cluster and e2e tiers.

Only the CRDs: the operator's and plugin's images cannot run here (no container runtime), so
no controller reconciles the objects and their admission webhooks are absent. What the API
server checks is each CRD's OpenAPI schema and its CEL rules.
"""

from __future__ import annotations

from pathlib import Path

CRDS = Path(__file__).with_name("fixtures") / "cnpg-crds.yaml"
PLURALS = (
    "clusters.postgresql.cnpg.io",
    "poolers.postgresql.cnpg.io",
    "scheduledbackups.postgresql.cnpg.io",
    "backups.postgresql.cnpg.io",
    "imagecatalogs.postgresql.cnpg.io",
    "clusterimagecatalogs.postgresql.cnpg.io",
    "databases.postgresql.cnpg.io",
    "objectstores.barmancloud.cnpg.io",
)


def install_crds(cluster) -> None:
    """Applies the CRDs (server-side: the Cluster CRD is too large for the last-applied
    annotation) and waits until each is established. `cluster`: a harness.Cluster."""
    cluster.apply(CRDS.read_text())
    for name in PLURALS:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
