"""Literal `extraEnv` values (issue 18, item 2).

A name that looks like a credential (PGPASSWORD, DB_PASS, SMTP_PASS, APITOKEN, ...) may not take
a literal value: settings refuse it and say how to use `valueFrom`. Every other literal value
still reaches the Chart as a secret and is marked secret in the rendered pod spec, since a
name is no proof that the value is harmless."""

from __future__ import annotations

import json

import pulumi
import pytest

from components import chart_secrets, chart_transforms
from tests.unit.harness import one, run_program, stack_config
from tests.unit.rendered import apply, chart_children, settings_for

CHART = "kubernetes:helm.sh/v4:Chart"
REFUSED = [
    "PGPASSWORD",
    "DB_PASS",
    "SMTP_PASS",
    "APITOKEN",
    "API_KEY",
    "apikey",
    "AWS_SECRET_ACCESS_KEY",
    "ACCESS_KEY_ID",
    "PRIVATE_KEY",
    "SENTRY_DSN",
    "GF_SMTP_PASSWORD",
    "REDIS_PWD",
    "DB_CREDS",
    "SIGNING-KEY",
    "PASSPHRASE",
    "GF_SMTP_PASSWORD__FILE",  # a *_FILE name with a value that is not a path
]
ACCEPTED = {
    "GF_SECURITY_ADMIN_PASSWORD__FILE": "/etc/secrets/grafana/admin-password",
    "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres-password",
    "KEYCLOAK_URL": "https://sso.example.com",
    "GF_AUTH_ANONYMOUS_ENABLED": "false",
    "LOG_FORMAT": "json",
    "CREDIT_LIMIT": "5",
}


def _config(env: list[dict]) -> dict:
    return {
        "ingress": {"domain": "pganalytics.example.com"},
        "chart": {"valuesFile": "values-prod.yaml", "values": {"grafana": {"extraEnv": env}}},
    }


@pytest.mark.parametrize("name", REFUSED)
def test_a_credential_looking_name_takes_no_literal_value(name):
    from components.settings import ConfigError, build_settings

    value = "hunter2-literal"
    with pytest.raises(ConfigError) as error:
        build_settings("prod", _config([{"name": name, "value": value}]))
    message = str(error.value)
    assert f"pganalytics:chart.values.grafana.extraEnv[0] gives {name} a literal value" in message
    assert "valueFrom.secretKeyRef.name" in message and "valueFrom.secretKeyRef.key" in message
    assert value not in message


def test_every_other_literal_and_every_secret_reference_is_accepted():
    from components.settings import build_settings

    env = [{"name": n, "value": v} for n, v in ACCEPTED.items()]
    env.append({"name": "DB_PASS", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}})
    settings = build_settings("prod", _config(env))
    assert settings.chart.values["grafana"]["extraEnv"] == env


def test_literal_env_finds_every_literal_value_in_any_component():
    values = {
        "backend": {"extraEnv": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {}}]},
        "grafana": {"extraEnv": [{"name": "GF_X", "value": "y"}]},
        "collector": {"extraEnv": []},
    }
    paths, pairs = chart_secrets.literal_env(values)
    assert paths == (("backend", "extraEnv", 0, "value"), ("grafana", "extraEnv", 0, "value"))
    assert pairs == {("A", "1"), ("GF_X", "y")}


def test_every_literal_extra_env_value_reaches_the_chart_as_secret():
    config = stack_config("prod", "existing")
    config["pganalytics:chart"] = {
        **config["pganalytics:chart"],
        "values": {"backend": {"extraEnv": [{"name": "LOG_FORMAT", "value": "json"}]}},
    }
    result = run_program("prod", config)
    assert result["error"] is None, result["error"]
    chart = one(result, CHART)
    secret = {tuple(p[1:]) for p in chart["secretPaths"] if p[0] == "values"}
    assert ("backend", "extraEnv", 0, "value") in secret, secret


def test_the_rendered_env_value_is_secret(loop):
    overrides = {"backend": {"extraEnv": [{"name": "LOG_FORMAT", "value": "json-lines"}]}}
    settings = settings_for("prod", overrides)
    _, pairs = chart_secrets.literal_env(overrides)
    hidden = []
    for child in chart_children(settings):
        props, _ = apply([chart_transforms.hide_literal_env(pairs)], child)
        if "json-lines" not in json.dumps(child.props):
            assert props is child.props, child.name
            continue
        spec = props["spec"]["template"]["spec"]
        for container in spec["containers"]:
            for env in container.get("env", []):
                if env["name"] == "LOG_FORMAT":
                    value = env["value"]
                    assert isinstance(value, pulumi.Output)
                    assert loop.run_until_complete(value.is_secret())
                    hidden.append(child.name)
    assert hidden == ["pganalytics:pganalytics/pganalytics-backend"]
