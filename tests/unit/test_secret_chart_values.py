"""Values set with `pulumi config set --secret --path pganalytics:chart.values.<path>` stay
secret: in the Chart's `values` input (leaf by leaf when the stack file says which leaves are
encrypted, whole otherwise) and in every object the chart renders from them."""

from __future__ import annotations

import asyncio
import json

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


def test_secret_paths_come_from_the_stack_file():
    assert chart_secrets.paths_from_stack_file(STACK_FILE) == [("backend", "ldap", "bindDn")]


def test_list_items_and_no_secret_leaf():
    text = STACK_FILE.replace(
        "        replicaCount: 3\n",
        "        extraEnv:\n          - name: A\n"
        "            value:\n              secure: v1:eA==\n",
    )
    assert chart_secrets.paths_from_stack_file(text) == [
        ("backend", "ldap", "bindDn"),
        ("backend", "extraEnv", 0, "value"),
    ]
    assert chart_secrets.paths_from_stack_file("config:\n  pganalytics:protect: true\n") is None


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
    config["pganalytics:chart"] = {
        **config["pganalytics:chart"],
        "valuesFile": "values-prod.yaml",
        "values": OVERRIDES,
    }
    result = run_program(stack_name, config, secret_keys=("pganalytics:chart",))
    assert result["error"] is None, result["error"]
    return result


@pytest.fixture
def stack_file():
    """A stack whose Pulumi.<stack>.yaml marks one leaf secure, as the CLI writes it."""
    path = ROOT / "Pulumi.secretleaf.yaml"
    path.write_text(STACK_FILE)
    yield "secretleaf"
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
    assert _chart_secret_paths(result) == {
        ("backend", "ldap", "enabled"),
        ("backend", "ldap", "serverUrl"),
        ("backend", "ldap", "bindDn"),
        ("backend", "ldap", "existingSecret"),
        ("backend", "replicaCount"),
    }


def test_no_secret_config_marks_nothing():
    config = stack_config("prod", "existing")
    config["pganalytics:chart"] = {**config["pganalytics:chart"], "values": OVERRIDES}
    result = run_program("prod", config)
    assert result["error"] is None, result["error"]
    assert _chart_secret_paths(result) == set()


@pytest.fixture
def loop():
    """One event loop for creating Outputs (in the transform) and awaiting them."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


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
