"""values.schema.json: valid draft-07, strict, in step with values.yaml and the program's contract;
typos and wrong types fail `helm template` with the key named."""

from __future__ import annotations

import re

import jsonschema
import pytest
import yaml

from .conftest import CHART, PROGRAM_VALUES, REPO, STACKS, HelmError, deep_merge, render_text

INTERFACE = REPO / "docs" / "CHART_INTERFACE.md"
# Objects whose shape Kubernetes (not the chart) owns: free-form in the schema.
FREE_FORM = {
    "affinity",
    "podSecurityContext",
    "containerSecurityContext",
    "behavior",
    "updateStrategy",
    "commonLabels",
    "commonAnnotations",
    "labels",
    "annotations",
    "podAnnotations",
    "podLabels",
    "nodeSelector",
    "groupToRoleMapping",
    "parameters",
    "ingressControllerPodLabels",
    "requests",
    "limits",
}


def leaf_paths(d, prefix=()):
    for k, v in d.items():
        if isinstance(v, dict) and v and k not in FREE_FORM:
            yield from leaf_paths(v, (*prefix, k))
        else:
            yield (*prefix, k)


def schema_node(schema, path):
    node = schema
    for k in path:
        node = node["properties"][k]
    return node


def test_schema_is_valid_draft7(values_schema):
    assert values_schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(values_schema)


def test_every_chart_owned_object_is_closed(values_schema):
    def walk(node, path):
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, (
                f"{'.'.join(path) or '<root>'} is open"
            )
            for k, sub in node["properties"].items():
                walk(sub, (*path, k))

    walk(values_schema, ())


def test_every_value_is_declared_with_a_type(chart_values, values_schema):
    for path in leaf_paths(chart_values):
        node = schema_node(values_schema, path)
        assert "type" in node or "oneOf" in node, ".".join(path)


@pytest.mark.parametrize("files", [(), *((f"values-{s}.yaml",) for s in STACKS)])
@pytest.mark.parametrize("with_program", [False, True])
def test_values_files_validate_with_jsonschema(values_schema, chart_values, files, with_program):
    """What the Pulumi program does: validate merged values with the Python jsonschema library."""
    merged = chart_values
    for f in files:
        merged = deep_merge(merged, yaml.safe_load((CHART / f).read_text()))
    if with_program:
        merged = deep_merge(merged, PROGRAM_VALUES)
    jsonschema.Draft7Validator(values_schema).validate(merged)


def _interface_rows():
    rows = []
    for line in INTERFACE.read_text().splitlines():
        if line.startswith("| `"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def _get(d, dotted):
    for k in dotted.split("."):
        d = d[k]
    return d


def test_chart_interface_keys_exist(chart_values, values_schema):
    rows = _interface_rows()
    assert rows, "no table rows parsed from docs/CHART_INTERFACE.md"
    seen = 0
    for cells in rows:
        first = re.findall(r"`([^`]+)`", cells[0])
        if all("." in k for k in first):  # first table: value paths
            for key in first:
                _get(chart_values, key)
                schema_node(values_schema, key.split("."))
                seen += 1
        else:  # second table: secret key -> chart values naming the key
            secret_key = first[0]
            for path in re.findall(r"`([^`]+)`", cells[-1]):
                assert _get(chart_values, path) == secret_key, (
                    f"{path} default must be {secret_key!r}"
                )
                seen += 1
    assert seen >= 20


BAD_VALUES = [
    ({"backend": {"replicaCont": 2}}, "replicaCont"),
    ({"global": {"storageClas": "x"}}, "storageClas"),
    ({"ingres": {"enabled": True}}, "ingres"),
    ({"grafana": {"admin": {"existingSecrets": "x"}}}, "existingSecrets"),
    ({"backend": {"replicaCount": "three"}}, "/backend/replicaCount"),
    ({"ingress": {"tls": {"enabled": "yes"}}}, "/ingress/tls/enabled"),
    ({"collector": {"mode": "daemonset"}}, "mode"),
    ({"collector": {"targets": [{"name": "Bad Name"}]}}, "/collector/targets/0/name"),
    ({"collector": {"targets": [{"host": "db"}]}}, "/collector/targets/0"),
    ({"backend": {"image": {"tag": "3.3.0\ncommand: [sh]"}}}, "/backend/image/tag"),
    ({"backend": {"priorityClassName": "high\n  command: [sh]"}}, "/backend/priorityClassName"),
    ({"backend": {"podAnnotations": {"bad key": "x"}}}, "bad key"),
    ({"grafana": {"podAnnotations": {"a\nb": "x"}}}, "invalid propertyName"),
    ({"timescaledb": {"parameters": {"max_connections; DROP": "1"}}}, "max_connections; DROP"),
    ({"timescaledb": {"parameters": {"work_mem": "4MB\n-c x=y"}}}, "/timescaledb/parameters"),
    ({"networkPolicy": {"backendExtraEgress": [{"ports": [{"port": 443}]}]}}, "to"),
    ({"backend": {"auth": {"adminPasswordKey": "admin password"}}}, "adminPasswordKey"),
    ({"timescaledb": {"persistence": {"size": 20}}}, "/timescaledb/persistence/size"),
    ({"backend": {"image": {"tag": "latest"}}}, "/backend/image/tag"),
    ({"redis": {"image": {"digest": "sha256:nothex"}}}, "/redis/image/digest"),
    ({"backend": {"pdb": {"maxUnavailable": 0}}}, "/backend/pdb/maxUnavailable"),
    ({"backend": {"config": {"environment": "prod"}}}, "/backend/config/environment"),
    ({"networkPolicy": {"enabled": "true"}}, "/networkPolicy/enabled"),
    ({"ingress": {"api": {"host": "https://api.example.com"}}}, "/ingress/api/host"),
    ({"timescaledb": {"auth": {"database": "pg-analytics"}}}, "/timescaledb/auth/database"),
    ({"global": {"imagePullSecrets": [{"nam": "x"}]}}, "/global/imagePullSecrets/0"),
    (
        {"backend": {"autoscaling": {"targetCPUUtilizationPercentage": 170}}},
        "targetCPUUtilizationPercentage",
    ),
]


@pytest.mark.parametrize(("values", "needle"), BAD_VALUES, ids=[n for _, n in BAD_VALUES])
def test_schema_rejects_typos_and_wrong_types(values, needle, values_schema, chart_values):
    with pytest.raises(HelmError) as err:
        render_text(values=values)
    assert "schema" in err.value.stderr and needle in err.value.stderr, err.value.stderr
    # the Python jsonschema library (used by the program) rejects it too
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(values_schema).validate(deep_merge(chart_values, values))


@pytest.mark.parametrize("stack", STACKS)
def test_typo_in_values_file_names_the_key(tmp_path, stack):
    text = (
        (CHART / f"values-{stack}.yaml").read_text().replace("  replicaCount:", "  replicaCont:", 1)
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(HelmError) as err:
        render_text(str(bad))
    assert "replicaCont" in err.value.stderr


COMBINATION_ERRORS = [
    ({"backend": {"config": {"environment": "production"}}}, "backend.config.apiBaseUrl"),
    ({"timescaledb": {"enabled": False}}, "externalDatabase.host"),
    (
        {"timescaledb": {"enabled": False}, "externalDatabase": {"host": "db"}},
        "externalDatabase.existingSecret",
    ),
    ({"mlService": {"enabled": True}}, "redis.enabled"),
    ({"httpRoute": {"enabled": True}}, "httpRoute.parentRefs"),
    ({"backend": {"ldap": {"enabled": True}}}, "backend.ldap.existingSecret"),
    ({"backend": {"encryption": {"keyBackend": "vault"}}}, "backend.encryption.vault"),
    (
        {"collector": {"targets": [{"name": "a", "host": "pg.example", "databases": ["x"]}]}},
        "collector.targets[0].existingSecret",
    ),
    (
        {
            "collector": {
                "targets": [
                    {"name": "a", "host": "pg", "existingSecret": "s", "username": "u"},
                ]
            }
        },
        "collector.targets[0].databases",
    ),
    ({"collector": {"targets": [{"name": "a"}, {"name": "a"}]}}, "collector.targets[1].name"),
    (
        {"collector": {"targets": [{"name": "node", "nodeLocal": True, "host": "pg"}]}},
        "collector.targets[0]",
    ),
    (
        {
            "timescaledb": {"enabled": False},
            "externalDatabase": {"host": "db", "existingSecret": "db"},
        },
        "externalDatabase.admin.username",
    ),
    (
        {
            "backend": {"autoscaling": {"enabled": True, "maxReplicas": 10}},
            "timescaledb": {"parameters": {"max_connections": "300"}},
        },
        "timescaledb.parameters.max_connections",
    ),
    (
        {"networkPolicy": {"smtp": {"enabled": True}}},
        "networkPolicy.smtp.cidrs",
    ),
]


@pytest.mark.parametrize(
    ("values", "needle"), COMBINATION_ERRORS, ids=[n for _, n in COMBINATION_ERRORS]
)
def test_inconsistent_values_fail_with_the_key(values, needle):
    with pytest.raises(HelmError) as err:
        render_text(values=values)
    slashed = "/" + needle.replace(".", "/")
    assert needle in err.value.stderr or slashed in err.value.stderr, err.value.stderr


def test_schema_rules_apply_to_partial_overrides(values_schema):
    """The program validates only its overrides: a rule fires on what they state explicitly."""
    validator = jsonschema.Draft7Validator(values_schema)
    assert not list(validator.iter_errors({"mlService": {"enabled": True}}))
    assert not list(validator.iter_errors({"timescaledb": {"enabled": False}}))
    assert list(
        validator.iter_errors({"mlService": {"enabled": True}, "redis": {"enabled": False}})
    )
    bad = {"timescaledb": {"enabled": False}, "externalDatabase": {"host": ""}}
    assert list(validator.iter_errors(bad))
    assert not list(validator.iter_errors(PROGRAM_VALUES))
