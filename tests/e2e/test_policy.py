"""The CrossGuard policy pack (policy/) run by the real engine: `pulumi preview --policy-pack
policy` on stacks that break one rule each, and on a compliant dev stack. Previews only:
nothing is deployed. The prod stack's CloudNativePG database needs its CRDs in the control plane
(tests/cluster/cnpg.py), not the operator."""

from __future__ import annotations

import secrets

import pytest

from tests.cluster.cnpg import install_crds

from .conftest import stack_config

PACK = "pganalytics-platform"


@pytest.fixture(scope="module")
def prod(new_project, cluster):
    project = new_project("prod")
    # prod's database is a CloudNativePG cluster: its CRDs are installed here (the operator's
    # chart comes from a repository this machine cannot reach), as in test_prod_protect.py.
    install_crds(cluster)
    database = {"mode": "cloudnativepg", "instances": 3, "operator": {"install": False}}
    project.init(
        stack_config(
            "Pulumi.prod.yaml",
            protect=True,
            chart={"namespace": "pga-e2e-policy"},
            database=database,
        ),
        {"pganalytics:kubeconfig": cluster.inline_kubeconfig()},
    )
    return project


@pytest.fixture(scope="module")
def dev(new_project, cluster):
    project = new_project("dev")
    project.init(
        stack_config("Pulumi.dev.yaml", chart={"namespace": "pga-e2e-policy-dev"}),
        {"pganalytics:kubeconfig": cluster.inline_kubeconfig()},
    )
    return project


def policy_preview(project):
    return project.preview("--policy-pack", str(project.dir / "policy"), check=False)


def violations(result, rule: str) -> list[str]:
    """Lines of the engine's policy report that name `rule`."""
    return [line for line in result.output.splitlines() if f"[{rule}]" in line or rule in line]


def test_compliant_dev_stack_passes_every_rule(dev):
    result = policy_preview(dev)
    assert result.returncode == 0, result.describe()
    assert PACK in result.output, result.describe()  # the pack ran
    for rule in ("prod-protects-stateful-resources", "images-pinned", "no-chart-made-secret"):
        assert not violations(result, rule), result.describe()


def test_prod_without_protect_is_refused(prod):
    prod.set_config("pganalytics:protect", "false")
    try:
        result = policy_preview(prod)
    finally:
        prod.set_config("pganalytics:protect", "true")
    assert result.returncode != 0, result.describe()
    assert violations(result, "prod-protects-stateful-resources"), result.describe()
    assert "pganalytics:protect true" in result.output


def test_prod_images_without_digest_are_refused(prod):
    result = policy_preview(prod)
    assert result.returncode != 0, result.describe()
    assert violations(result, "images-pinned"), result.describe()
    assert "not pinned by digest" in result.output


def test_prod_ingress_without_tls_is_refused(prod):
    result = policy_preview(prod)
    assert result.returncode != 0, result.describe()
    assert violations(result, "prod-ingress-tls"), result.describe()


def test_a_chart_made_secret_is_refused(dev):
    dev.set_config("pganalytics:chart.values.grafana.admin.existingSecret", "")
    try:
        result = policy_preview(dev)
    finally:
        dev.rm_config("pganalytics:chart.values.grafana.admin.existingSecret")
    assert result.returncode != 0, result.describe()
    assert violations(result, "no-chart-made-secret"), result.describe()


def test_a_failed_pr_preview_shows_the_violations_but_no_secret_value(prod):
    """A policy violation quoting a value set with --secret (the image tag): the engine hands
    the pack the value masked, and the pull-request report (which also scrubs the stack's
    secret config values from every message) shows the violations without it."""
    tag = f"3.3.0-{secrets.token_hex(6)}"
    prod.set_config("pganalytics:chart.imageTag", tag, "--secret")
    try:
        policy = ("--policy-pack", str(prod.dir / "policy"))
        stream = {"PULUMI_ENABLE_STREAMING_JSON_PREVIEW": "true"}
        raw = prod.preview("--json", *policy, check=False, env=stream)
        assert '"policyEvent"' in raw.stdout and tag not in raw.stdout
        proc, comment = prod.preview_script(*policy)
    finally:
        prod.rm_config("pganalytics:chart.imageTag")
    assert proc.returncode != 0, proc.stdout
    report = proc.stdout
    assert "**The preview failed.** The engine said:" in report
    assert "policy pganalytics-platform/images-pinned (mandatory)" in report, report
    assert "is not pinned by digest on production stack 'prod'" in report
    assert "pganalytics/api:[secret]" in report and "pga-e2e-policy" in report
    assert tag not in report + proc.stderr + comment
