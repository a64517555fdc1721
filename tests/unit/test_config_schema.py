"""The settings models are the one source of the configuration surface: Pulumi.yaml's
`config:` block, the README table and docs/CONFIGURATION.md are generated from them and must
not be stale; every documented command names a real key; stack files hold no secret."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml
from pydantic import BaseModel

from components.settings import Settings
from tests.unit.harness import ROOT, STACKS, project_defaults

PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
DOC = (ROOT / "docs" / "CONFIGURATION.md").read_text()
FIELDS = {f.alias: f for f in Settings.model_fields.values()}
OBJECTS = {
    key: {f.alias: f for f in field.annotation.model_fields.values()}
    for key, field in FIELDS.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
}


def test_generated_reference_is_current():
    """Pulumi.yaml, README.md and docs/CONFIGURATION.md match the models (`make docs`)."""
    result = subprocess.run(
        [sys.executable, "scripts/gen_config_reference.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_pulumi_yaml_declares_exactly_the_model_keys():
    assert list(PROJECT["config"]) == list(FIELDS)


@pytest.mark.parametrize("key", sorted(OBJECTS))
def test_object_defaults_in_pulumi_yaml_are_the_model_defaults(key):
    declared = PROJECT["config"][key]["default"]
    assert declared == {name: _default(field) for name, field in OBJECTS[key].items()}


def _default(field):
    """A field's default as the stack configuration spells it; a nested object (database.operator)
    by its fields' defaults."""
    model = field.annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return {f.alias: _default(f) for f in model.model_fields.values()}
    return field.get_default(call_default_factory=True)


@pytest.mark.parametrize("key", sorted(FIELDS))
def test_every_key_and_field_is_documented(key):
    assert FIELDS[key].description or key in OBJECTS, f"{key} has no docstring"
    assert f"`pganalytics:{key}`" in DOC, f"docs/CONFIGURATION.md does not document {key}"
    for name, field in OBJECTS.get(key, {}).items():
        assert field.description, f"{key}.{name} has no docstring in its model"
        assert f"`{key}.{name}`" in DOC, f"docs/CONFIGURATION.md misses {key}.{name}"


def test_documented_config_commands_name_known_keys():
    sets = re.findall(r"pulumi config set\b[^\n`]*?\bpganalytics:([A-Za-z0-9_]+)", DOC)
    assert len(sets) >= 10, "the extraction found too few commands to prove anything"
    for key in sets:
        assert key in FIELDS, f"docs/CONFIGURATION.md sets unknown key {key}"
    for key, field in re.findall(r"pganalytics:([A-Za-z]+)\.([A-Za-z]+)", DOC):
        if key in OBJECTS:
            assert field in OBJECTS[key], f"docs name pganalytics:{key}.{field}"


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


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_use_only_model_keys(stack):
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    for key, value in config.items():
        name = key.split(":", 1)[1]
        assert name in FIELDS, key
        if name in OBJECTS:
            assert set(value) <= set(OBJECTS[name]), f"{key}: {set(value) - set(OBJECTS[name])}"


def test_project_defaults_cover_every_key():
    assert {k.split(":", 1)[1] for k in project_defaults()} == set(FIELDS)


def test_settings_never_import_chart_values():
    """values depends on settings, never the reverse (no import cycle)."""
    code = "import sys, components.settings; sys.exit('components.values' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True)
    assert result.returncode == 0, "importing components.settings pulled in components.values"
    for path in (ROOT / "components" / "settings").glob("*.py"):
        assert "components.values" not in path.read_text(), path.name
