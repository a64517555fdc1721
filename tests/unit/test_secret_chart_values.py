"""Values set with `pulumi config set --secret --path pganalytics:chart.values.<path>` stay
secret: in the Chart's `values` input (leaf by leaf when the stack file says which leaves are
encrypted, whole otherwise) and in every object the chart renders from them."""

from __future__ import annotations

import json
import uuid

import pulumi
import pytest

from components import chart_secrets, chart_transforms
from tests.unit.harness import ROOT, one, run_program, stack_config
from tests.unit.rendered import apply, chart_children, settings_for

CHART = "kubernetes:helm.sh/v4:Chart"
BIND_DN = "cn=svc-Sup3rS3cretBind,dc=example,dc=com"
OVERRIDES = {
    "backend": {
        "ldap": {
            "enabled": True,
            "serverUrl": "ldaps://ldap.example.com:636",
            "bindDn": BIND_DN,
            "existingSecret": "ldap",
        },
        "replicaCount": 3,
    }
}
# What `pulumi config set --secret --path pganalytics:chart.values.backend.ldap.bindDn ...`
# writes into Pulumi.<stack>.yaml (the ciphertext is opaque to the program).
STACK_FILE = """\
encryptionsalt: v1:Zm9v:v1:YmFy:YmF6
config:
  pganalytics:protect: true
  pganalytics:chart:
    valuesFile: values-prod.yaml
    values:
      backend:
        ldap:
          enabled: true
          serverUrl: ldaps://ldap.example.com:636
          bindDn:
            secure: v1:c2VjcmV0:Y2lwaGVydGV4dA==
          existingSecret: ldap
        replicaCount: 3
"""


def _settings(stack: str, overrides: dict, **chart):
    from components.settings import build_settings

    config = {
        "ingress": {"domain": "pganalytics.example.com"},
        "chart": {"valuesFile": "values-prod.yaml", "values": overrides, **chart},
    }
    return build_settings(stack, config, {"chart"}, set())


def test_secret_paths_come_from_the_stack_file(stack_file):
    assert _settings(stack_file, OVERRIDES).chart_secret_paths == (("backend", "ldap", "bindDn"),)


def test_list_items_and_no_secret_leaf(stack_file):
    path = ROOT / f"Pulumi.{stack_file}.yaml"
    path.write_text(
        STACK_FILE.replace(
            "        replicaCount: 3\n",
            "        extraEnv:\n          - name: A\n"
            "            value:\n              secure: v1:eA==\n",
        )
    )
    overrides = {"backend": {**OVERRIDES["backend"], "extraEnv": [{"name": "A", "value": "xy"}]}}
    del overrides["backend"]["replicaCount"]
    assert set(_settings(stack_file, overrides).chart_secret_paths) == {
        ("backend", "ldap", "bindDn"),
        ("backend", "extraEnv", 0, "value"),
    }
    # A stack file without the key cannot tell: every leaf of chart.values is secret.
    path.write_text("config:\n  pganalytics:protect: true\n")
    assert len(_settings(stack_file, overrides).chart_secret_paths) == 6


EVERY_LEAF = {
    ("backend", "ldap", "enabled"),
    ("backend", "ldap", "serverUrl"),
    ("backend", "ldap", "bindDn"),
    ("backend", "ldap", "existingSecret"),
    ("backend", "replicaCount"),
}


def test_config_the_stack_file_did_not_give_makes_all_chart_values_secret(stack_file):
    """Config from elsewhere than the stack file (Pulumi ESC, the Automation API, a stale
    file): the program cannot tell which leaf is secret, so every leaf of chart.values is."""
    changed = {"backend": {**OVERRIDES["backend"], "replicaCount": 4}}
    assert set(_settings(stack_file, changed).chart_secret_paths) == EVERY_LEAF
    added = {"backend": {**OVERRIDES["backend"], "podLabels": {"team": "db"}}}
    assert set(_settings(stack_file, added).chart_secret_paths) == {
        *EVERY_LEAF,
        ("backend", "podLabels", "team"),
    }


def test_a_stack_file_that_imports_an_esc_environment_cannot_tell(stack_file):
    path = ROOT / f"Pulumi.{stack_file}.yaml"
    path.write_text("environment:\n  - pganalytics/prod\n" + STACK_FILE)
    assert set(_settings(stack_file, OVERRIDES).chart_secret_paths) == EVERY_LEAF


def test_errors_show_plain_chart_values_and_hide_the_secret_ones(stack_file):
    from components import values
    from components.settings import ConfigError, build_settings

    path = ROOT / f"Pulumi.{stack_file}.yaml"
    secure = "        replicaCount:\n          secure: v1:eA==\n"
    text = STACK_FILE.replace("        replicaCount: 3\n", secure)
    path.write_text(text.replace("    values:\n", "    imageTag: latest\n    values:\n"))
    overrides = {"backend": {**OVERRIDES["backend"], "replicaCount": "s3cr3t-count"}}
    chart = {"valuesFile": "values-prod.yaml", "values": overrides, "imageTag": "latest"}
    config = {"ingress": {"domain": "pganalytics.example.com"}, "chart": chart}
    with pytest.raises(ConfigError) as error:
        build_settings(stack_file, config, {"chart"}, set(), chart_check=values.problems)
    message = str(error.value)
    assert "pganalytics:chart.imageTag must be an exact image tag, not 'latest'" in message
    assert "(got 'latest')" in message, "a plain value beside a secret one is shown"
    assert "pganalytics:chart.values.backend.replicaCount" in message
    assert "s3cr3t-count" not in message and "[secret]" in message


def _leaves(tree, prefix=()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _leaves(v, (*prefix, i))
    else:
        yield prefix, tree


def _program(stack_name: str) -> dict:
    config = stack_config("prod", "existing")
    # What the CLI passes for a key the stack file sets: that value, not merged with the
    # project's default (so the same leaves as STACK_FILE's).
    config["pganalytics:chart"] = {"valuesFile": "values-prod.yaml", "values": OVERRIDES}
    result = run_program(stack_name, config, secret_keys=("pganalytics:chart",))
    assert result["error"] is None, result["error"]
    return result


@pytest.fixture
def stack_file():
    """A stack whose Pulumi.<stack>.yaml marks one leaf secure, as the CLI writes it."""
    # A name of its own per use: xdist workers run this module's tests at the same time, and a
    # shared file would be deleted under the other worker's test.
    stack = f"secretleaf{uuid.uuid4().hex[:8]}"
    path = ROOT / f"Pulumi.{stack}.yaml"
    path.write_text(STACK_FILE)
    yield stack
    path.unlink()


def _chart_secret_paths(result) -> set[tuple]:
    """Secret paths inside the Chart's `values`, as the engine receives them."""
    chart = one(result, CHART)
    return {tuple(p[1:]) for p in chart["secretPaths"] if p[0] == "values"}


def test_only_the_secret_leaf_reaches_the_chart_as_secret(stack_file):
    result = _program(stack_file)
    assert _chart_secret_paths(result) == {("backend", "ldap", "bindDn")}
    values = one(result, CHART)["inputs"]["values"]
    assert BIND_DN in json.dumps(values), "recorded decrypted, marked secret"


def test_without_the_stack_file_every_override_is_secret():
    assert not (ROOT / "Pulumi.nofile.yaml").exists()
    result = _program("nofile")
    assert _chart_secret_paths(result) == EVERY_LEAF


def test_no_secret_config_marks_nothing():
    config = stack_config("prod", "existing")
    config["pganalytics:chart"] = {**config["pganalytics:chart"], "values": OVERRIDES}
    result = run_program("prod", config)
    assert result["error"] is None, result["error"]
    assert _chart_secret_paths(result) == set()


def test_rendered_objects_carry_the_secret_as_secret(loop):
    def is_secret(value) -> bool:
        return isinstance(value, pulumi.Output) and loop.run_until_complete(value.is_secret())

    settings = settings_for("prod", OVERRIDES)
    secrets = chart_secrets.secret_strings(OVERRIDES, (("backend", "ldap", "bindDn"),))
    assert secrets == {BIND_DN}
    hidden = []
    for child in chart_children(settings):
        plain = json.dumps(child.props)
        props, _ = apply([chart_transforms.hide_secrets(secrets)], child)
        if BIND_DN not in plain:
            assert props is child.props, child.name
            continue
        leaves = list(_leaves(props))
        assert BIND_DN not in json.dumps([v for _, v in leaves if isinstance(v, str)])
        hidden += [(child.name, p) for p, v in leaves if isinstance(v, pulumi.Output)]
        assert all(is_secret(v) for _, v in leaves if isinstance(v, pulumi.Output))
    assert ("pganalytics:pganalytics/pganalytics-backend", ("data", "LDAP_BIND_DN")) in hidden


def test_short_secrets_hide_only_whole_strings(loop):
    props, changed = chart_secrets.hide_secret_strings(
        {"a": "abc", "b": "xabcx", "c": ["abc"]}, frozenset({"abc"})
    )
    assert changed and props["b"] == "xabcx"
    assert isinstance(props["a"], pulumi.Output) and isinstance(props["c"][0], pulumi.Output)


def test_the_stack_file_is_read_from_the_project_the_engine_runs(tmp_path, monkeypatch):
    """A project elsewhere that links to this program (the e2e tier's): its own stack file
    decides, not the one in this checkout."""
    from components.settings import base, secret_leaves

    stack = f"elsewhere{uuid.uuid4().hex[:8]}"
    (tmp_path / "Pulumi.yaml").write_text("name: pganalytics\nruntime: python\n")
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(STACK_FILE)
    assert not (ROOT / f"Pulumi.{stack}.yaml").exists()
    monkeypatch.setattr(base.pulumi, "get_root_directory", lambda: str(tmp_path))
    assert secret_leaves.project_dir() == tmp_path
    assert _settings(stack, OVERRIDES).chart_secret_paths == (("backend", "ldap", "bindDn"),)
    # Outside the engine the SDK answers with a placeholder, which names no project.
    monkeypatch.setattr(base.pulumi, "get_root_directory", lambda: "root_directory")
    assert secret_leaves.project_dir() == ROOT
