"""YAML injection through values: a string value is data, never structure.

Every string leaf of values.yaml (and of the scenarios that switch components on) is set to a
payload carrying a newline and a YAML mapping line. Either values.schema.json refuses it, or the
chart renders exactly the objects, and within each object exactly the keys, that a harmless
value renders: a template that prints a value unquoted would turn the payload into a new key
(`envFrom: secretRef:` in a container was the finding that started this test).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
import yaml

from components.settings.secret_leaves import leaves

from .conftest import CHART, SCENARIOS, HelmError, deep_merge, render

# A harmless value (the leaf's own, or this word) and the payload differ only by what follows
# the newline.
BENIGN = "pgaval"
PAYLOAD_TAIL = "\ninjected: yes\nenvFrom:\n- secretRef:\n    name: pga-credentials"

# Scenarios that render every template at least once; each adds its own string leaves.
BASES = (
    "default",
    "prod",
    "enterprise",
    "backup-gcs-restore",
    "backup-azure",
    "volume-snapshots",
    "frontend",
    "ml-service",
    "collector-targets",
    "external-database",
    "httproute",
)


def string_leaves(node: Any) -> list[tuple]:
    """Paths of the string leaves (map keys and list indexes)."""
    return [path for path, value in leaves(node) if isinstance(value, str)]


def set_leaf(tree: dict, path: tuple, value: str) -> dict:
    out = copy.deepcopy(tree)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def harmless(tree: dict, path: tuple) -> str:
    """The leaf's own value, or a plain word where it is empty."""
    node: Any = tree
    for part in path:
        node = node[part]
    return node or BENIGN


def shape(node: Any) -> Any:
    """The object graph without its scalar values: keys, list lengths, and the type of each
    leaf. An injected key, list item or object changes it; a changed string does not."""
    if isinstance(node, dict):
        return {key: shape(value) for key, value in node.items()}
    if isinstance(node, list):
        return [shape(value) for value in node]
    return type(node).__name__


def graph(objs: list[dict]) -> dict:
    return {f"{o['kind']}/{o['metadata']['name']}": shape(o) for o in objs}


def values_of(scenario: str) -> dict:
    files, values = SCENARIOS[scenario]
    merged = yaml.safe_load((CHART / "values.yaml").read_text())
    for f in files:
        merged = deep_merge(merged, yaml.safe_load((CHART / f).read_text()) or {})
    return deep_merge(merged, values)


@pytest.fixture(scope="module")
def validator():
    schema = json.loads((CHART / "values.schema.json").read_text())
    return jsonschema.Draft7Validator(schema)


def _render_or_none(values: dict) -> list[dict] | None:
    try:
        return render(values=values)
    except HelmError:
        return None


@pytest.mark.parametrize("scenario", BASES)
def test_a_newline_in_any_string_value_never_changes_the_objects(scenario, validator):
    base = values_of(scenario)
    leaves = list(string_leaves(base))
    assert len(leaves) > 100, "values.yaml should have well over 100 string leaves"
    benign: dict = base
    payload: dict = base
    accepted = []
    for path in leaves:
        good = harmless(base, path)
        if list(validator.iter_errors(set_leaf(base, path, good + PAYLOAD_TAIL))):
            continue  # the schema refuses the newline for this leaf: nothing is rendered
        # The harmless value must be acceptable wherever the payload was.
        assert not list(validator.iter_errors(set_leaf(base, path, good))), path
        accepted.append(path)
    # One render for every accepted leaf at once, against one render of the harmless values;
    # if the chart refuses that combination, each leaf is checked alone.
    for path in accepted:
        benign = set_leaf(benign, path, harmless(base, path))
        payload = set_leaf(payload, path, harmless(base, path) + PAYLOAD_TAIL)
    want = _render_or_none(benign)
    got = _render_or_none(payload) if want is not None else None
    if want is not None and got is not None and graph(got) == graph(want):
        return
    # Something differs: find the leaves, one at a time.
    bad = []
    for path in accepted:
        want = _render_or_none(set_leaf(base, path, harmless(base, path)))
        if want is None:
            continue  # the chart's own checks refuse this value: nothing is rendered
        try:
            got = render(values=set_leaf(base, path, harmless(base, path) + PAYLOAD_TAIL))
        except HelmError as err:
            if "execution error" not in err.stderr:  # a chart `fail` names the key; YAML breaks
                bad.append(".".join(str(p) for p in path))
            continue
        if graph(got) != graph(want):
            bad.append(".".join(str(p) for p in path))
    assert not bad, f"{scenario}: a newline in these values changes the rendered objects: {bad}"


def test_the_payload_is_caught_when_a_value_is_printed_unquoted(tmp_path):
    """The comparison itself: an unquoted value in a template does change the graph."""
    objs = [{"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "pgaval"}}]
    injected = yaml.safe_load(
        f"kind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: {BENIGN}\n  injected: yes\n"
    )
    assert graph(objs) != graph([injected])


def image_objects(schema: dict, path: str = ""):
    """(values path, schema node) of every image block: an object with repository and tag."""
    props = schema.get("properties") or {}
    if "repository" in props and "tag" in props:
        yield path, schema
    for key, node in props.items():
        yield from image_objects(node, f"{path}.{key}" if path else key)


BAD_FIELDS = {
    "tag": ["1.76.0\nenvFrom:", "1.76.0 ", "\uff11.76.0", "latest", "-rc1", "a" * 129, ""],
    "repository": ["rclone/rclone\nenvFrom:", "rclone/../x", "Rclone/rclone", "r clone", ""],
    "registry": ["docker.io\nenvFrom:", "docker.io/", "https://docker.io", "d\u0131cker.io"],
    "digest": ["sha256:" + "a" * 63, "sha256:" + "A" * 64, "sha256:" + "a" * 64 + "\nx"],
}


@pytest.mark.parametrize("field", sorted(BAD_FIELDS))
def test_every_image_field_has_a_pattern(validator, field):
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    blocks = list(image_objects(validator.schema))
    assert len(blocks) == 12, [p for p, _ in blocks]
    for path, node in blocks:
        assert "pattern" in node["properties"][field], f"{path}.{field} has no pattern"
        assert node["properties"]["pullPolicy"].get("enum"), f"{path}.pullPolicy"
        for value in BAD_FIELDS[field]:
            bad = set_leaf(values, (*path.split("."), field), value)
            assert list(validator.iter_errors(bad)), f"{path}.{field} accepts {value!r}"
