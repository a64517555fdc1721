"""The configuration surface stays consistent: the keys the settings accept, the keys
Pulumi.yaml declares (with the same defaults), the keys docs/CONFIGURATION.md documents, and
stack files that hold no secret."""

from __future__ import annotations

import re

import pytest
import yaml

from components.settings import SCHEMA
from tests.unit.harness import ROOT, STACKS, project_defaults

PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
DOC = (ROOT / "docs" / "CONFIGURATION.md").read_text()


def test_pulumi_yaml_declares_exactly_the_settings_keys():
    assert set(PROJECT["config"]) == set(SCHEMA)


@pytest.mark.parametrize("key", sorted(SCHEMA))
def test_declared_defaults_match_the_settings(key):
    spec = PROJECT["config"][key]
    assert spec.get("description"), f"{key} has no description"
    schema = SCHEMA[key]
    if isinstance(schema, dict):
        assert "type" not in spec  # project config has no object type: default documents it
        declared = spec["default"]
        for field, (_, default) in schema.items():
            if default is None:  # derived per target
                assert field not in declared
            else:
                assert declared[field] == default, f"{key}.{field}"
        assert set(declared) <= set(schema)
    else:
        kind, default = schema
        if kind != "dict":
            assert spec["type"] == {"str": "string", "int": "integer", "bool": "boolean"}[kind]
        assert spec["default"] == default


@pytest.mark.parametrize("key", sorted(SCHEMA))
def test_every_key_is_documented(key):
    assert f"`pganalytics:{key}`" in DOC, f"docs/CONFIGURATION.md does not document {key}"
    schema = SCHEMA[key]
    if isinstance(schema, dict):
        for field in schema:
            assert f"{key}.{field}" in DOC, f"docs/CONFIGURATION.md misses {key}.{field}"


def test_documented_config_commands_name_known_keys():
    for key in re.findall(r"pulumi config set\b[^\n`]*?\bpganalytics:([A-Za-z0-9_]+)", DOC):
        assert key in SCHEMA, f"docs/CONFIGURATION.md sets unknown key {key}"
    for path in re.findall(r"pganalytics:([A-Za-z]+)\.([A-Za-z]+)", DOC):
        key, field = path
        if key in SCHEMA and isinstance(SCHEMA[key], dict) and key not in ("tags",):
            if key == "chart" and field not in SCHEMA[key]:
                continue
            assert field in SCHEMA[key], f"docs name pganalytics:{key}.{field}"


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_hold_no_secret(stack):
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    data = yaml.safe_load(text)
    assert "encryptionsalt" not in data and "secretsprovider" not in data
    assert "encryptedkey" not in data
    assert "secure:" not in text
    assert set(data) == {"config"}
    for key in data["config"]:
        assert key.startswith("pganalytics:"), key


def test_project_defaults_cover_every_key():
    assert {k.split(":", 1)[1] for k in project_defaults()} == set(SCHEMA)
