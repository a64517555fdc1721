"""Credential rotation: config validation, the resources a rotation plans under mocks (keepers
only on the rotated password, which alone is unprotected in that update; the Secret updated,
never replaced; the restart annotation on every pod template), and the database pod's
password-sync script run against a real PostgreSQL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

from components import chart_transforms as transforms
from components.credentials import (
    CREDENTIALS_VERSION_ANNOTATION,
    PASSWORDS,
    ROTATABLE,
    SECRET_KEYS,
)
from components.settings.credentials import NOT_ROTATABLE, rotation_version
from tests.unit.harness import by_type, one, run_program, stack_config
from tests.unit.rendered import apply, chart_children, settings_for

PASSWORD = "random:index/randomPassword:RandomPassword"
SECRET = "kubernetes:core/v1:Secret"
PROVIDER = "pulumi:providers:kubernetes"


def _run(rotation: dict, previous: dict | None, stack: str = "prod") -> dict:
    config = stack_config(stack, "existing", database="bundled")
    if rotation:
        config["pganalytics:credentials"] = {"rotation": rotation}
    result = run_program(stack, config, previous_outputs=previous)
    assert result["error"] is None, result["error"]
    return result


def _passwords(result) -> dict[str, dict]:
    return {r["name"]: r for r in by_type(result, PASSWORD)}


def test_no_rotation_keeps_the_graph_of_before():
    result = _run({}, {"namespace": "pganalytics"})
    for name, r in _passwords(result).items():
        assert r["inputs"].get("keepers") is None, f"{name}: keepers would replace it"
        assert r["protect"], name
    assert result["outputs"]["credentialRotation"]["value"] == {}


def test_rotation_replaces_only_the_rotated_password_and_unprotects_it_once():
    previous = {"namespace": "pganalytics", "credentialRotation": {}}
    before = _passwords(_run({}, previous))
    during = _run({"database-password": 1}, previous)
    after_record = {"namespace": "pganalytics", "credentialRotation": {"database-password": 1}}
    after = _passwords(_run({"database-password": 1}, after_record))
    rotated = _passwords(during)

    # keepers change (a ForceNew input of RandomPassword) for that key only.
    changed = {k for k in PASSWORDS if rotated[k]["inputs"] != before[k]["inputs"]}
    assert changed == {"database-password"}
    assert rotated["database-password"]["inputs"]["keepers"] == {"rotation": "1"}
    # Unprotected only in the update that replaces it; protected again afterwards.
    assert {k for k, r in rotated.items() if not r["protect"]} == {"database-password"}
    assert all(r["protect"] for r in after.values())
    assert after["database-password"]["inputs"] == rotated["database-password"]["inputs"]
    assert during["outputs"]["credentialRotation"]["value"] == {"database-password": 1}

    # The Secret keeps its identity and protection: its data changes in place.
    secret = one(during, SECRET, "credentials")
    assert secret["protect"] and not secret["deleteBeforeReplace"]
    assert "immutable" not in secret["inputs"]
    assert secret["inputs"]["metadata"]["name"] == "pganalytics-credentials"


def test_provider_updates_secrets_in_place():
    """Without enableSecretMutable the provider plans a replacement for any Secret whose data
    changes, which protection would refuse."""
    result = _run({"jwt-secret": 2}, {})
    provider = one(result, PROVIDER, "k8s")
    assert provider["inputs"]["enableSecretMutable"] in (True, "true")


def test_restart_annotation_follows_the_generations():
    assert rotation_version({}) is None
    assert rotation_version({"jwt-secret": 0}) is None
    one_ = rotation_version({"jwt-secret": 1})
    assert one_ and one_ != rotation_version({"jwt-secret": 2})
    assert one_ != rotation_version({"redis-password": 1})
    assert rotation_version({"jwt-secret": 1, "redis-password": 0}) == one_


def test_every_pod_template_gets_the_restart_annotation():
    settings = settings_for(
        "enterprise", {"redis": {"enabled": True}, "backup": {"enabled": True}}, database="bundled"
    )
    version = rotation_version({"database-password": 3})
    seen = set()
    for child in chart_children(settings):
        path = transforms.POD_TEMPLATE_PATHS.get(child.type_)
        props, _ = apply([transforms.restart_on_rotation(version)], child)
        if path is None:
            assert props is child.props
            continue
        node = props
        for part in path:
            node = node[part]
        assert node["metadata"]["annotations"][CREDENTIALS_VERSION_ANNOTATION] == version
        seen.add(child.type_.rsplit(":", 1)[1])
        # The original object is untouched (the chart's other annotations survive).
        original = child.props
        for part in path:
            original = original[part]
        for key, value in (original.get("metadata", {}).get("annotations") or {}).items():
            assert node["metadata"]["annotations"][key] == value
    assert {"Deployment", "StatefulSet", "CronJob"} <= seen


@pytest.mark.parametrize(
    ("rotation", "expected"),
    [
        (
            {"encryption-key": 1},
            r"pganalytics:credentials\.rotation\.encryption-key cannot be rotated: .*"
            r"fix: pulumi config rm --path pganalytics:credentials\.rotation\.encryption-key",
        ),
        (
            {"grafana-admin-password": 1},
            r"credentials\.rotation\.grafana-admin-password cannot be rotated: Grafana stores",
        ),
        (
            {"database-pasword": 1},
            r"credentials\.rotation\.database-pasword names no rotatable credential .*"
            r"pulumi config set --path pganalytics:credentials\.rotation\.database-password 1",
        ),
        (
            {"jwt-secret": -1},
            r"credentials\.rotation\.jwt-secret must be a whole number from 0 to 1000000 "
            r"\(got -1\).*fix: pulumi config set --path pganalytics:credentials\.rotation"
            r"\.jwt-secret 1",
        ),
        (
            {"jwt-secret": "next"},
            r"credentials\.rotation\.jwt-secret must be an integer \(got 'next'\)",
        ),
    ],
)
def test_bad_rotation_config_is_refused_before_any_resource(rotation, expected):
    config = stack_config("prod", "existing", database="bundled")
    config["pganalytics:credentials"] = {"rotation": rotation}
    result = run_program("prod", config)
    assert result["error_type"] == "ConfigError"
    assert re.search(expected, result["error"]), result["error"]
    assert result["resources"] == []


def test_rotating_a_bundled_database_password_without_it_is_refused():
    config = stack_config("prod", "existing", database="external")
    config["pganalytics:chart"] = {
        **config["pganalytics:chart"],
        "values": {
            "timescaledb": {"enabled": False},
            "externalDatabase": {"host": "db.example.com", "existingSecret": "external-db"},
        },
    }
    config["pganalytics:credentials"] = {"rotation": {"database-password": 2, "jwt-secret": 1}}
    previous = {"namespace": "pganalytics", "credentialRotation": {"database-password": 1}}
    result = run_program("prod", config, previous_outputs=previous)
    assert result["error_type"] == "ConfigError"
    assert result["resources"] == []
    assert (
        "pganalytics:credentials.rotation.database-password rotates a password of the bundled "
        "database, which is off" in result["error"]
    )
    assert (
        "fix: pulumi config set --path pganalytics:credentials.rotation.database-password 1"
        in result["error"]
    )
    assert "jwt-secret" not in result["error"]
    # Unchanged generations are no rotation: accepted.
    config["pganalytics:credentials"] = {"rotation": {"database-password": 1}}
    assert run_program("prod", config, previous_outputs=previous)["error"] is None


def test_rotatable_keys_are_the_passwords_apps_reread():
    assert set(ROTATABLE) == {
        "postgres-password",
        "database-password",
        # the collector's monitoring role: the bootstrap re-applies it, the collector restarts
        "monitor-password",
        "redis-password",
        "jwt-secret",
        "registration-secret",
    }


def test_every_secret_key_is_either_rotatable_or_refused_with_a_reason():
    """The settings list the rotatable keys; a key added to the Secret must take a side."""
    assert set(ROTATABLE) <= set(PASSWORDS)
    assert set(ROTATABLE).isdisjoint(NOT_ROTATABLE)
    assert set(SECRET_KEYS) <= set(ROTATABLE) | set(NOT_ROTATABLE)


# --- the password-sync container, against a real PostgreSQL ------------------------------


def _sync_container() -> dict:
    settings = settings_for("prod", database="bundled")
    sts = next(
        c
        for c in chart_children(settings)
        if c.type_ == "kubernetes:apps/v1:StatefulSet" and c.name.endswith("-timescaledb")
    )
    containers = sts.props["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "password-sync")


def test_password_sync_stops_at_once_on_sigterm():
    """As PID 1 a shell ignores SIGTERM unless it traps it: the pod would wait out its grace
    period on every restart."""
    idle = _sync_container()["args"][0].split("role passwords applied", 1)[1].split("\n", 1)[1]
    proc = subprocess.Popen(["/bin/sh", "-c", idle])
    try:
        time.sleep(0.3)
        assert proc.poll() is None, "the container idles after applying the passwords"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()


def _sync_script() -> str:
    sync = _sync_container()
    mounts = {m["name"]: m["mountPath"] for m in sync["volumeMounts"]}
    # the server by socket; the passwords as files of the mounted Secret (issue 18.9)
    assert mounts == {"run": "/var/run/postgresql", "credentials": "/etc/pganalytics-db"}
    env = {e["name"]: e for e in sync["env"]}
    assert not [e for e in env.values() if "valueFrom" in e], "no credential in the env"
    assert env["POSTGRES_PASSWORD_FILE"]["value"] == "/etc/pganalytics-db/superuser-password"
    assert env["PGANALYTICS_DB_PASSWORD_FILE"]["value"] == "/etc/pganalytics-db/app-password"
    script = sync["args"][0]
    # Everything before the idle loop: the part that talks to PostgreSQL.
    return script.split("while :", 1)[0]


def _password_files(tmp_path, admin: str, app: str) -> dict[str, str]:
    (tmp_path / "superuser-password").write_text(admin)
    (tmp_path / "app-password").write_text(app)
    return {
        "POSTGRES_PASSWORD_FILE": str(tmp_path / "superuser-password"),
        "PGANALYTICS_DB_PASSWORD_FILE": str(tmp_path / "app-password"),
    }


def test_password_sync_applies_rotated_passwords(postgres_server, tmp_path):
    pg = postgres_server
    pg.psql("CREATE ROLE pganalytics LOGIN PASSWORD 'OldApp123'")
    pg.psql("ALTER ROLE postgres PASSWORD 'OldAdmin123'")
    pg.require_passwords()
    sock = str(pg.tmp / "sock")
    script = _sync_script().replace("/var/run/postgresql", sock)
    env = {
        **os.environ,
        "PATH": f"{pg.bindir}:{os.environ['PATH']}",
        "PGPORT": str(pg.port),
        "PGANALYTICS_DB_USER": "pganalytics",
        # a quote: the SQL must quote, not splice
        **_password_files(tmp_path, "NewAdmin456", "NewApp'456"),
    }
    done = subprocess.run(
        ["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "role passwords applied" in done.stdout
    assert "NewAdmin456" not in done.stdout + done.stderr

    def login(user, password):
        return pg.psql("SELECT current_user", user=user, password=password, check=False)

    assert login("postgres", "NewAdmin456").stdout.strip() == "postgres"
    assert login("pganalytics", "NewApp'456").stdout.strip() == "pganalytics"
    assert login("postgres", "OldAdmin123").returncode != 0
    assert login("pganalytics", "OldApp123").returncode != 0


def test_password_sync_before_the_app_role_exists(postgres_server, tmp_path):
    """On a first start the image's init scripts create the application role after the
    superuser exists: the sync must not fail on the missing role."""
    pg = postgres_server
    script = _sync_script().replace("/var/run/postgresql", str(pg.tmp / "sock"))
    env = {
        **os.environ,
        "PATH": f"{pg.bindir}:{os.environ['PATH']}",
        "PGPORT": str(pg.port),
        "PGANALYTICS_DB_USER": "pganalytics",
        **_password_files(tmp_path, "Admin789", "App789"),
    }
    done = subprocess.run(
        ["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    pg.require_passwords()
    login = pg.psql("SELECT 1", user="postgres", password="Admin789", check=False)
    assert login.returncode == 0, login.stderr


def test_a_rotation_runs_the_database_bootstrap_again():
    """docs/CHART_INTERFACE.md: a rotating program sets databaseBootstrap.runToken, which is
    part of the bootstrap Job's name, so a new Job applies the role passwords."""
    from components import values as chart_values

    def bootstrap_jobs(settings) -> set[str]:
        return {
            c.name
            for c in chart_children(settings)
            if c.type_ == "kubernetes:batch/v1:Job" and "bootstrap" in c.name
        }

    before = settings_for("prod", database="bundled")
    assert "databaseBootstrap" not in chart_values.derived_values(before)
    rotated = before.model_copy(
        update={
            "credentials": before.credentials.model_copy(update={"rotation": {"jwt-secret": 1}})
        }
    )
    token = chart_values.derived_values(rotated)["databaseBootstrap"]["runToken"]
    assert token == rotation_version({"jwt-secret": 1})
    first, second = bootstrap_jobs(before), bootstrap_jobs(rotated)
    assert len(first) == len(second) == 1
    assert first != second, "the rotated run must render a new bootstrap Job"
