"""The policy pack (policy/__main__.py) holds for the shipped stacks on every target: each of
its rules run on what the program registers (under mocks) and on every object the chart renders
for the stack (the real helm, through the release's transforms, which set `protect`). The real
engine runs the pack in tests/e2e/test_policy.py (on stacks retargeted at the local cluster,
where TLS and cloud resources cannot be shown); this is where the shipped prod and enterprise
settings meet it."""

from __future__ import annotations

import importlib.util
import re

import pytest

from components.release import ReleaseArgs, _transforms
from tests.unit.harness import ROOT, STACKS, TARGETS, matrix_case
from tests.unit.rendered import apply, chart_children, settings_for


def load_policy():
    spec = importlib.util.spec_from_file_location("pganalytics_policy", ROOT / "policy/__main__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # as an import: the rules, no PolicyPack server
    return module


POLICY = load_policy()


def resources(stack: str, target: str):
    """(type, name, props, protect) of everything the engine would show the policy pack."""
    for r in matrix_case(stack, target)["resources"]:
        if r["custom"] and not r["read"]:
            yield r["type"], r["name"], r["inputs"], bool(r.get("protect"))
    settings = settings_for(stack, target=target)
    chain = _transforms(ReleaseArgs(settings=settings, provider=None, namespace="pganalytics"))
    for child in chart_children(settings):
        props, opts = apply(chain, child)
        yield child.type_, child.name, props, bool(opts.protect)


def violations(stack: str, target: str) -> list[str]:
    from pulumi_policy import PolicyResourceOptions, ResourceValidationArgs

    found: list[str] = []
    for type_, name, props, protect in resources(stack, target):
        opts = PolicyResourceOptions(protect, [], None, [], None, [])
        args = ResourceValidationArgs(
            type_, props, f"urn:pulumi:{stack}::pganalytics::{type_}::{name}", name, opts, None
        )
        for policy in POLICY.POLICIES:
            policy.validate(args, lambda msg, urn=None, p=policy: found.append(f"[{p.name}] {msg}"))
    return found


DIGEST = "is not pinned by digest"


def pins_digests(stack: str) -> bool:
    """Whether the stack's values file pins any image by digest (`<component>.image.digest`)."""
    from components.settings.base import chart_values_file

    def digests(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "digest" and value:
                    yield value
                else:
                    yield from digests(value)

    return any(digests(chart_values_file(f"values-{stack}.yaml")))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("stack", STACKS)
def test_the_shipped_stacks_pass_the_policy_pack(stack, target):
    found = violations(stack, target)
    others = sorted({v for v in found if DIGEST not in v})
    assert not others, f"{len(others)} violations, e.g.:\n" + "\n".join(others[:12])
    unpinned = sorted({v for v in found if DIGEST in v})
    if unpinned and not pins_digests(stack):
        pytest.fail(f"{stack} pins no image by digest: {unpinned[:3]}")
    # Every third-party image is pinned in values-<stack>.yaml. The images nobody publishes a
    # digest for (docs/KUBERNETES_DEPLOYMENT.md, "Image digests": the team's own builds of the
    # pganalytics images, the rclone uploader) are the only ones the rule may still refuse, and
    # it names the chart value that fixes each: the team sets their digests per stack.
    images = {re.search(r"image '([^']+)'", v).group(1) for v in unpinned}
    assert images <= UNPUBLISHED_DIGESTS, (
        f"unpinned third-party images: {images - UNPUBLISHED_DIGESTS}"
    )
    assert all("image.digest" in v for v in unpinned)


# The images whose digests only the deploying team can know (its build or its mirror).
UNPUBLISHED_DIGESTS = {
    "docker.io/pganalytics/api:3.3.0",
    "docker.io/pganalytics/collector:3.3.0",
    "docker.io/pganalytics/ml-service:3.3.0",
    "docker.io/pganalytics/frontend:3.3.0",
    "docker.io/rclone/rclone:1.76.0",
}


def test_the_rules_see_what_they_judge():
    """Guards the check above: the same resources break the rules once the settings do."""
    names = {p.name for p in POLICY.POLICIES}
    assert names == {
        "prod-protects-stateful-resources",
        "images-pinned",
        "prod-ingress-tls",
        "no-chart-made-secret",
    }
    kinds = {type_ for type_, *_ in resources("prod", "aws")}
    assert {"kubernetes:apps/v1:StatefulSet", "aws:eks/cluster:Cluster"} <= kinds
    assert "kubernetes:networking.k8s.io/v1:Ingress" in kinds
    # A dev stack is no production stack, so it passes unprotected: the rule must fire on prod.
    unprotected = [
        (t, n, p, False) for t, n, p, _ in resources("prod", "aws") if t.startswith("aws:eks/c")
    ]
    assert unprotected
    from pulumi_policy import PolicyResourceOptions, ResourceValidationArgs

    found = []
    for type_, name, props, protect in unprotected:
        opts = PolicyResourceOptions(protect, [], None, [], None, [])
        args = ResourceValidationArgs(
            type_, props, f"urn:pulumi:prod::pganalytics::{type_}::{name}", name, opts, None
        )
        POLICY.prod_protects_stateful(args, lambda msg, urn=None: found.append(msg))
    assert found and "pganalytics:protect true" in found[0]
