"""Protection of every object that holds data or state, checked on the chart's real children
(helm template of the program's values, named as helm.v4.Chart names them), and on the
program's own credentials under mocks."""

from __future__ import annotations

import pulumi
import pytest

from components import chart_transforms as transforms
from components.release import ReleaseArgs, _transforms
from components.volumes import Volume, VolumePlan
from tests.unit.harness import STACKS, by_type, one, run_program, stack_config
from tests.unit.rendered import apply, chart_children, settings_for

PVC = "kubernetes:core/v1:PersistentVolumeClaim"
STS = "kubernetes:apps/v1:StatefulSet"
# Every optional stateful component on, so each kind of volume is rendered.
ALL_VOLUMES = {
    "redis": {"enabled": True},
    "backup": {"enabled": True},
    "grafana": {"persistence": {"enabled": True}},
}


def _release_transforms(settings, plan=None):
    args = ReleaseArgs(settings=settings, provider=None, namespace="pganalytics")
    if plan:
        args.volumes = plan
    return _transforms(args)


def _protected(settings, plan=None) -> dict[tuple[str, str], bool]:
    chain = _release_transforms(settings, plan)
    return {(c.type_, c.name): bool(apply(chain, c)[1].protect) for c in chart_children(settings)}


def test_child_names_are_what_helm_v4_registers():
    names = {
        (c.type_, c.name)
        for c in chart_children(settings_for("enterprise", ALL_VOLUMES, database="bundled"))
    }
    assert (STS, "pganalytics:pganalytics/pganalytics-timescaledb") in names
    assert (STS, "pganalytics:pganalytics/pganalytics-redis") in names
    assert (PVC, "pganalytics:pganalytics/pganalytics-grafana") in names
    assert (PVC, "pganalytics:pganalytics/pganalytics-backup") in names
    # Same object names under other kinds: a name match alone would protect these too.
    assert ("kubernetes:apps/v1:Deployment", "pganalytics:pganalytics/pganalytics-grafana") in names
    assert ("kubernetes:batch/v1:CronJob", "pganalytics:pganalytics/pganalytics-backup") in names


@pytest.mark.parametrize("stack", ["prod", "enterprise"])
def test_every_stateful_child_is_protected_and_nothing_else(stack):
    settings = settings_for(stack, ALL_VOLUMES, database="bundled")
    protected = _protected(settings)
    stateful = {
        key
        for key in protected
        if key[0] == PVC or (key[0] == STS and key[1].endswith(("-timescaledb", "-redis")))
    }
    assert len(stateful) == 4, stateful
    assert {k for k, on in protected.items() if on} == stateful


def test_the_cloudnativepg_cluster_is_protected():
    """prod's default database: the Cluster (the operator deletes its claims with it) is
    protected; the Pooler, ObjectStore and ScheduledBackup hold nothing and are not."""
    protected = _protected(settings_for("prod", ALL_VOLUMES))
    by_kind = {key[0].rsplit(":", 1)[1]: on for key, on in protected.items()
               if "cnpg.io" in key[0]}  # fmt: skip
    # (on existing without an endpoint no bucket: no ObjectStore or ScheduledBackup)
    assert by_kind == {"Cluster": True, "Pooler": False, "ImageCatalog": False}


def test_backend_statefulset_without_claims_is_not_protected():
    protected = _protected(settings_for("prod", database="bundled"))
    assert protected[(STS, "pganalytics:pganalytics/pganalytics-backend")] is False


def test_dev_protects_nothing_but_still_orphans_pods():
    settings = settings_for("dev", ALL_VOLUMES)
    chain = _release_transforms(settings)
    for child in chart_children(settings):
        props, opts = apply(chain, child)
        assert not opts.protect, child.name
        annotations = props["metadata"].get("annotations") or {}
        orphan = annotations.get(transforms.ORPHAN_ANNOTATION)
        has_claims = child.type_ == STS and child.props["spec"].get("volumeClaimTemplates")
        assert orphan == ("orphan" if has_claims else None), child.name
        skip = annotations.get(transforms.SKIP_AWAIT_ANNOTATION)
        # Claims, Ingresses and Services only (chart_transforms.SKIP_AWAIT_TYPES): the
        # workloads keep the provider's readiness await.
        skipped = (PVC, transforms.INGRESS, transforms.SERVICE)
        assert skip == ("true" if child.type_ in skipped else None), child.name


@pytest.mark.parametrize("stack", STACKS)
def test_the_one_callback_runs_every_step_in_order(stack):
    """The release registers chart_transforms.chain of its steps: each child comes out as the
    steps, run one after another, make it; None (no change) when no step touches it."""
    args = ReleaseArgs(
        settings=settings_for(stack, ALL_VOLUMES),
        provider=None,
        namespace="pganalytics",
        credentials_version="v2",
    )
    steps = _transforms(args)
    one_callback = transforms.chain(steps)
    untouched = 0
    for child in chart_children(args.settings):
        expected_props, expected_opts = apply(steps, child)
        result = one_callback(
            pulumi.ResourceTransformArgs(
                custom=True,
                type_=child.type_,
                name=child.name,
                props=child.props,
                opts=pulumi.ResourceOptions(),
            )
        )
        if result is None:
            untouched += 1
            assert expected_props is child.props, child.name
            continue
        assert result.props == expected_props, child.name
        assert bool(result.opts.protect) == bool(expected_opts.protect), child.name
    assert untouched, "every child changed: the None case went untested"


def test_a_growing_statefulset_is_unprotected_for_that_update_only():
    settings = settings_for("prod", database="bundled")
    volume = Volume(
        "timescaledb", "200Gi", "", "pganalytics-timescaledb", ("data-pganalytics-timescaledb-0",)
    )
    plan = VolumePlan({"timescaledb": volume}, frozenset({"pganalytics-timescaledb"}))
    protected = _protected(settings, plan)
    assert protected[(STS, "pganalytics:pganalytics/pganalytics-timescaledb")] is False
    assert protected[(PVC, "pganalytics:pganalytics/pganalytics-grafana")] is True
    assert _protected(settings)[(STS, "pganalytics:pganalytics/pganalytics-timescaledb")] is True


@pytest.mark.parametrize("stack", STACKS)
def test_credentials_are_protected_per_stack(stack):
    result = run_program(stack, stack_config(stack, "existing", database="bundled"))
    assert result["error"] is None, result["error"]
    protect = stack != "dev"
    for type_ in (
        "random:index/randomPassword:RandomPassword",
        "random:index/randomBytes:RandomBytes",
    ):
        for r in by_type(result, type_):
            assert r["protect"] == protect, r["name"]
    assert one(result, "kubernetes:core/v1:Secret", "credentials")["protect"] == protect


def test_a_spec_that_arrives_secret_is_still_recognised():
    """The SDK pushes a nested secret up to the top-level field before a transform sees it."""
    from dataclasses import replace

    from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret, wrap_rpc_secret

    from components.credentials import CREDENTIALS_VERSION_ANNOTATION

    settings = settings_for("prod", database="bundled")
    sts = next(
        c
        for c in chart_children(settings)
        if c.type_ == STS and c.name.endswith("/pganalytics-timescaledb")
    )
    hidden = replace(sts, props={**sts.props, "spec": wrap_rpc_secret(sts.props["spec"])})
    chain = [
        transforms.orphan_on_delete,
        transforms.protect_state(),
        transforms.restart_on_rotation("v1"),
    ]
    props, opts = apply(chain, hidden)
    assert opts.protect
    assert props["metadata"]["annotations"][transforms.ORPHAN_ANNOTATION] == "orphan"
    assert is_rpc_secret(props["spec"]), "the secret stays secret"
    template = unwrap_rpc_secret(props["spec"])["template"]
    assert template["metadata"]["annotations"][CREDENTIALS_VERSION_ANNOTATION] == "v1"
