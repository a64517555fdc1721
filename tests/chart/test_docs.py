"""docs/HELM_VALUES_REFERENCE.md is generated from values.yaml and lists every option."""

from __future__ import annotations

import subprocess
import sys

import yaml

from .conftest import CHART, REPO

SCRIPT = REPO / "scripts" / "gen_values_reference.py"
DOC = REPO / "docs" / "HELM_VALUES_REFERENCE.md"
README = CHART / "README.md"


def _leaves(value, path=()):
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, (*path, str(k)))
    else:
        yield ".".join(path)


def test_reference_is_up_to_date():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr + "\nrun: scripts/gen_values_reference.py"


def test_reference_lists_every_leaf_key():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    doc = DOC.read_text()
    missing = [k for k in _leaves(values) if f"| `{k}` |" not in doc]
    assert not missing, f"missing from {DOC.name}: {missing}"


def test_every_top_level_and_section_key_has_its_own_comment():
    """Each chart-owned option is commented in values.yaml (the generator inherits only
    into Kubernetes-owned structures such as resources or securityContext)."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import gen_values_reference as gen
    finally:
        sys.path.pop(0)
    comments = gen.parse_comments((CHART / "values.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    k8s_owned = {
        "resources",
        "podSecurityContext",
        "containerSecurityContext",
        "startup",
        "liveness",
        "readiness",
        "updateStrategy",
        "parameters",
        "service",
    }

    def walk(node, path):
        for k, v in node.items():
            p = (*path, k)
            if path and path[-1] in k8s_owned:
                continue
            assert p in comments, f"values.yaml: {'.'.join(p)} has no comment of its own"
            if isinstance(v, dict) and v:
                walk(v, p)

    walk(values, ())


def test_chart_readme_covers_install_upgrade_profiles_security():
    text = README.read_text()
    for needle in (
        "helm install",
        "existingSecret",
        "helm upgrade",
        "values-dev.yaml",
        "values-prod.yaml",
        "values-enterprise.yaml",
        "restricted",
        "HELM_VALUES_REFERENCE.md",
    ):
        assert needle in text, f"chart README lacks {needle!r}"
