"""d. A prod-shaped stack (values-prod.yaml, `protect` on, target `existing`): `pulumi destroy`
is refused and deletes nothing.

Its database is prod's, a CloudNativePG cluster (database.mode cloudnativepg) with
`operator.install` false: the CloudNativePG and Barman Cloud CRDs of the pinned versions are
installed into the control plane (tests/cluster/cnpg.py); the operator's images cannot run
here, so nothing reconciles the Cluster and Pooler: the API server accepts them, the engine
records them, a no-change preview shows them unchanged."""

from __future__ import annotations

import pytest

from tests.cluster.cnpg import install_crds

from .checks import namespace_gone, objects_in_cluster, wait_for
from .conftest import stack_config

NAMESPACE = "pga-e2e-prod"


@pytest.fixture(scope="module")
def prod(new_project, cluster):
    project = new_project("prod")  # stack `prod`: the chart gets values-prod.yaml
    install_crds(cluster)
    database = {"mode": "cloudnativepg", "instances": 3, "operator": {"install": False}}
    project.init(
        stack_config(
            "Pulumi.prod.yaml", protect=True, chart={"namespace": NAMESPACE}, database=database
        ),
        {"pganalytics:kubeconfig": cluster.inline_kubeconfig()},
    )
    project.up()
    yield project
    # Clean-up for the shared control plane: what an operator does to really delete prod.
    project.run("state", "unprotect", "--all", "--yes", "--stack", "prod", check=False)
    project.destroy(check=False)
    wait_for("namespace deletion", lambda: namespace_gone(cluster, NAMESPACE), 120)


def test_d_the_cloudnativepg_objects_survive_a_no_change_preview(prod, cluster):
    """The Cluster, Pooler and ImageCatalog prod renders are stored by the API server and a
    preview right after the update plans no change to them (nor to anything else)."""
    stored = {(kind, name) for (kind, ns, name) in prod.k8s_objects() if ns == NAMESPACE}
    for kind, name in (("Cluster", "pganalytics-db"), ("Pooler", "pganalytics-db-pooler"),
                       ("ImageCatalog", "pganalytics-db-images")):  # fmt: skip
        assert (kind, name) in stored, sorted(stored)
        cluster.kubectl("get", f"{kind.lower()}s.postgresql.cnpg.io", name, "-n", NAMESPACE)
    assert not any(k == "StatefulSet" and "timescaledb" in n for k, n in stored)
    result = prod.preview("--expect-no-changes", "--diff", check=False)
    assert result.returncode == 0, result.describe()


def test_d_destroy_of_a_protected_prod_stack_is_refused_and_deletes_nothing(prod, cluster):
    before_state = prod.k8s_objects()
    protected = {
        (r["type"], r["urn"].split("::")[-1]) for r in prod.resources() if r.get("protect")
    }
    assert ("kubernetes:core/v1:Namespace", "app-namespace") in protected, protected
    assert ("kubernetes:core/v1:Secret", "credentials") in protected, protected
    assert (
        "kubernetes:postgresql.cnpg.io/v1:Cluster",
        f"pganalytics:{NAMESPACE}/pganalytics-db",
    ) in (protected), protected
    kinds = {k for (k, ns, _) in before_state if ns == NAMESPACE}
    before_cluster = objects_in_cluster(cluster, NAMESPACE, kinds)

    result = prod.destroy(check=False)

    assert result.returncode != 0, result.describe()
    assert "protected" in result.output, result.describe()
    assert prod.k8s_objects().keys() == before_state.keys()
    assert objects_in_cluster(cluster, NAMESPACE, kinds) == before_cluster
    assert not namespace_gone(cluster, NAMESPACE)
