"""d. A prod-shaped stack (values-prod.yaml, `protect` on, target `existing`): `pulumi destroy`
is refused and deletes nothing."""

from __future__ import annotations

import pytest

from .checks import namespace_gone, objects_in_cluster, wait_for
from .conftest import stack_config

NAMESPACE = "pga-e2e-prod"


@pytest.fixture(scope="module")
def prod(new_project, cluster):
    project = new_project("prod")  # stack `prod`: the chart gets values-prod.yaml
    project.init(
        stack_config("Pulumi.prod.yaml", protect=True, chart={"namespace": NAMESPACE}),
        {"pganalytics:kubeconfig": cluster.inline_kubeconfig()},
    )
    project.up()
    yield project
    # Clean-up for the shared control plane: what an operator does to really delete prod.
    project.run("state", "unprotect", "--all", "--yes", "--stack", "prod", check=False)
    project.destroy(check=False)
    wait_for("namespace deletion", lambda: namespace_gone(cluster, NAMESPACE), 120)


def test_d_destroy_of_a_protected_prod_stack_is_refused_and_deletes_nothing(prod, cluster):
    before_state = prod.k8s_objects()
    protected = {
        (r["type"], r["urn"].split("::")[-1]) for r in prod.resources() if r.get("protect")
    }
    assert ("kubernetes:core/v1:Namespace", "app-namespace") in protected, protected
    assert ("kubernetes:core/v1:Secret", "credentials") in protected, protected
    assert any(t == "kubernetes:apps/v1:StatefulSet" and "timescaledb" in n for t, n in protected)
    kinds = {k for (k, ns, _) in before_state if ns == NAMESPACE}
    before_cluster = objects_in_cluster(cluster, NAMESPACE, kinds)

    result = prod.destroy(check=False)

    assert result.returncode != 0, result.describe()
    assert "protected" in result.output, result.describe()
    assert prod.k8s_objects().keys() == before_state.keys()
    assert objects_in_cluster(cluster, NAMESPACE, kinds) == before_cluster
    assert not namespace_gone(cluster, NAMESPACE)
