"""The chart's own bootstrap scripts and SQL, run against a real PostgreSQL.

The scripts are taken from the rendered bootstrap ConfigMap (what the Job mounts). The
server is Debian's PostgreSQL (tests/support/postgres.py), not the TimescaleDB image, and the
migrations are small ones written here (CI has no upstream source): they create the tables of
the app contract (tests/chart/app_contract.py) and seed user admin/admin the way 3.3.0 does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from . import app_contract as contract
from .conftest import CHART, RELEASE, find, render

APP_DB, METRICS_DB, APP_USER, READER, MONITOR, OWNER = (
    "pganalytics",
    "metrics",
    "pganalytics",
    "pganalytics_grafana",
    "pganalytics_monitor",
    "pganalytics_owner",
)
PASSWORDS = {
    "super": "SuperPw1",
    "app": "AppPw1x",
    "reader": "ReaderPw1",
    "monitor": "MonitorPw1",
    "admin": "FirstAdmin9",
}


def _contract_migration() -> str:
    """A migration building the contract's tables the way 3.3.0's 001_init.sql does: it creates
    an extension and roles of its own, and grants pg_monitor SELECT on collected statistics."""
    user, password = contract.SEEDED_ADMIN
    lines = [
        'CREATE EXTENSION IF NOT EXISTS "pgcrypto";',
        "CREATE SCHEMA IF NOT EXISTS pganalytics;",
        "CREATE ROLE pganalytics_app_readonly WITH LOGIN;",
        "CREATE TABLE pganalytics.users (id serial PRIMARY KEY, username text UNIQUE,"
        " password_hash text);",
        "INSERT INTO pganalytics.users (username, password_hash) VALUES"
        f" ('{user}', crypt('{password}', gen_salt('bf')));",
    ]
    for schema, tables in contract.DASHBOARD_TABLES.items():
        for table, columns in tables.items():
            cols = ", ".join(f"{c} {t}" for c, t in columns.items())
            lines.append(f"CREATE TABLE {schema}.{table} ({cols});")
            lines.append(f"GRANT SELECT ON {schema}.{table} TO pg_monitor;")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def scripts(tmp_path_factory) -> Path:
    objs = render()
    data = find(objs, "ConfigMap", f"{RELEASE}-pganalytics-bootstrap")["data"]
    on_disk = {p.name: p.read_text() for p in (CHART / "files" / "db").iterdir()}
    assert data == on_disk, "the bootstrap ConfigMap must carry files/db unchanged"
    d = tmp_path_factory.mktemp("bootstrap-scripts")
    for name, text in data.items():
        (d / name).write_text(text)
    d.chmod(0o755)
    return d


@pytest.fixture
def migrations(tmp_path) -> Path:
    d = tmp_path / "migrations"
    d.mkdir()
    (d / "001_contract.sql").write_text(_contract_migration())
    # bare statements, no transaction of their own (like 3.3.0's 001_init.sql)
    (d / "002_more.sql").write_text(
        "CREATE TABLE pganalytics.collector_notes (id bigserial PRIMARY KEY, note text);\n"
    )
    (d / "003_notes.sql").write_text(
        "BEGIN;\nALTER TABLE pganalytics.collector_notes ADD seen boolean;\nCOMMIT;\n"
    )
    (d / "README.txt").write_text("not a migration\n")
    tmp_path.chmod(0o755)
    for p in d.iterdir():
        p.chmod(0o644)
    d.chmod(0o755)
    return d


@pytest.fixture
def pg(postgres_server):
    postgres_server.psql(f"ALTER ROLE postgres PASSWORD '{PASSWORDS['super']}'")
    postgres_server.require_passwords()
    return postgres_server


def _env(pg, scripts: Path, migrations: Path, **over) -> dict:
    env = {
        **os.environ,
        "PATH": f"{pg.bindir}:{os.environ['PATH']}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg.port),
        "PGUSER": "postgres",
        "PGPASSWORD": PASSWORDS["super"],
        "PGSSLMODE": "disable",
        "APP_DB": APP_DB,
        "METRICS_DB": METRICS_DB,
        "APP_USER": APP_USER,
        "APP_PASSWORD": PASSWORDS["app"],
        "READER_USER": READER,
        "READER_PASSWORD": PASSWORDS["reader"],
        "MONITOR_USER": MONITOR,
        "MONITOR_PASSWORD": PASSWORDS["monitor"],
        "OWNER_USER": OWNER,
        "EXTENSIONS": "uuid-ossp pgcrypto timescaledb",
        "ADMIN_PASSWORD": PASSWORDS["admin"],
        "OWNS_SERVER": "true",
        "MIGRATIONS_DIR": str(migrations),
        "SCRIPTS_DIR": str(scripts),
        "WAIT_SECONDS": "30",
        "TMPDIR": str(migrations.parent),
    }
    env.update(over)
    return env


def _bootstrap(pg, scripts, migrations, **over) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(scripts / "bootstrap.sh")],
        env=_env(pg, scripts, migrations, **over),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _applied(out: str) -> list[str]:
    return re.findall(r"bootstrap: applying (\S+)", out)


def _as(pg, role, sql, db=APP_DB, check=False):
    pw = {APP_USER: PASSWORDS["app"], MONITOR: PASSWORDS["monitor"]}.get(role, PASSWORDS["reader"])
    return pg.psql(sql, user=role, password=pw, db=db, check=check)


def test_applies_each_migration_once_and_records_it(pg, scripts, migrations):
    first = _bootstrap(pg, scripts, migrations)
    assert first.returncode == 0, first.stdout + first.stderr
    assert _applied(first.stdout) == ["001_contract.sql", "002_more.sql", "003_notes.sql"]
    recorded = pg.psql(
        "SELECT version FROM pganalytics_bootstrap.schema_migrations ORDER BY 1",
        db=APP_DB,
        password=PASSWORDS["super"],
    ).stdout.split()
    assert recorded == ["001_contract.sql", "002_more.sql", "003_notes.sql"]
    again = _bootstrap(pg, scripts, migrations)
    assert again.returncode == 0, again.stderr
    assert _applied(again.stdout) == [], "a recorded migration must never run again"
    # an upgrade ships one more file: only that one runs
    (migrations / "004_new.sql").write_text("CREATE TABLE pganalytics.upgraded (id int);\n")
    up = _bootstrap(pg, scripts, migrations)
    assert up.returncode == 0 and _applied(up.stdout) == ["004_new.sql"], up.stdout + up.stderr


def test_parallel_runs_apply_each_migration_once(pg, scripts, migrations):
    procs = [
        subprocess.Popen(
            ["sh", str(scripts / "bootstrap.sh")],
            env=_env(pg, scripts, migrations),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    applied = [m for o in outs for m in _applied(o)]
    assert sorted(applied) == ["001_contract.sql", "002_more.sql", "003_notes.sql"]


def test_a_failed_migration_leaves_nothing_and_is_retried(pg, scripts, migrations):
    good = (migrations / "002_more.sql").read_text()
    (migrations / "002_more.sql").write_text(good + "SELECT no_such_function();\n")
    failed = _bootstrap(pg, scripts, migrations)
    assert failed.returncode != 0
    sql = "SELECT to_regclass('pganalytics.collector_notes') IS NULL"
    assert pg.psql(sql, db=APP_DB, password=PASSWORDS["super"]).stdout.strip() == "t"
    (migrations / "002_more.sql").write_text(good)
    retried = _bootstrap(pg, scripts, migrations)
    assert retried.returncode == 0, retried.stderr
    assert _applied(retried.stdout) == ["002_more.sql", "003_notes.sql"]


def test_roles_get_least_privilege(pg, scripts, migrations):
    assert _bootstrap(pg, scripts, migrations).returncode == 0
    flags = pg.psql(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls,"
        f" pg_has_role('{APP_USER}', 'pg_monitor', 'member') FROM pg_roles"
        f" WHERE rolname = '{APP_USER}'"
    ).stdout.strip()
    assert flags == "f|f|f|f|f", "the app role monitors nothing (the monitoring role does)"
    # the backend's unqualified names resolve (search_path), and it can read and write rows
    for table in contract.UNQUALIFIED_TABLES:
        r = _as(pg, APP_USER, f"SELECT count(*) FROM {table}")
        assert r.returncode == 0, r.stderr
    r = _as(pg, APP_USER, "INSERT INTO collector_notes (note) VALUES ('x') RETURNING id")
    assert r.returncode == 0, r.stderr  # sequences granted too
    assert _as(pg, APP_USER, "DELETE FROM collector_notes").returncode == 0
    # but changes no schema and owns no database
    for ddl in (
        "CREATE TABLE public.mine (id int)",
        "CREATE TABLE pganalytics.mine (id int)",
        "DROP TABLE pganalytics.collector_notes",
        "CREATE SCHEMA mine",
        "DROP DATABASE metrics",
    ):
        assert _as(pg, APP_USER, ddl).returncode != 0, ddl
    owners = pg.psql(
        f"SELECT string_agg(pg_get_userbyid(datdba), ',') FROM pg_database"
        f" WHERE datname IN ('{APP_DB}', '{METRICS_DB}')"
    ).stdout.strip()
    assert owners == "postgres,postgres"
    # the migrations' bookkeeping is readable, not writable, by the app role
    assert (
        _as(pg, APP_USER, "SELECT count(*) FROM pganalytics_bootstrap.schema_migrations").returncode
        == 0
    )
    assert _as(pg, APP_USER, "DELETE FROM pganalytics_bootstrap.schema_migrations").returncode != 0
    assert _as(pg, APP_USER, "SELECT 1", db=METRICS_DB).returncode == 0, (
        "the backend pings TIMESCALE_URL"
    )


def test_reader_only_reads(pg, scripts, migrations):
    assert _bootstrap(pg, scripts, migrations).returncode == 0
    assert _as(pg, READER, "SELECT count(*) FROM metrics_pg_stats_query").returncode == 0
    assert _as(pg, READER, "SELECT count(*) FROM pganalytics.collectors").returncode == 0
    for sql in (
        "DELETE FROM pganalytics.collectors",
        "INSERT INTO metrics_pg_locks (time) VALUES (now())",
        "CREATE TABLE x (id int)",
    ):
        assert _as(pg, READER, sql).returncode != 0, sql
    assert _as(pg, READER, "SELECT 1", db=METRICS_DB).returncode != 0, "no CONNECT on metrics"


def test_without_grafana_the_reader_has_no_password(pg, scripts, migrations):
    assert _bootstrap(pg, scripts, migrations, READER_PASSWORD="").returncode == 0
    assert (
        pg.psql(
            f"SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = '{READER}'"
        ).stdout.strip()
        == "t"
    )


def _admin_login(pg, password: str) -> bool:
    sql = (
        "SELECT password_hash = crypt($$" + password + "$$, password_hash)"
        " FROM pganalytics.users WHERE username = 'admin'"
    )
    return pg.psql(sql, db=APP_DB, password=PASSWORDS["super"]).stdout.strip() == "t"


def test_first_admin_password_comes_from_the_secret(pg, scripts, migrations):
    assert _bootstrap(pg, scripts, migrations).returncode == 0
    assert _admin_login(pg, PASSWORDS["admin"]) and not _admin_login(pg, "admin")
    # a password the admin changed later survives the next bootstrap
    pg.psql(
        "UPDATE pganalytics.users SET password_hash = crypt('Changed1', gen_salt('bf'))",
        db=APP_DB,
        password=PASSWORDS["super"],
    )
    assert _bootstrap(pg, scripts, migrations).returncode == 0
    assert _admin_login(pg, "Changed1")
    # any user left with password "admin" fails the bootstrap
    pg.psql(
        "INSERT INTO pganalytics.users (username, password_hash)"
        " VALUES ('other', crypt('admin', gen_salt('bf')))",
        db=APP_DB,
        password=PASSWORDS["super"],
    )
    failed = _bootstrap(pg, scripts, migrations)
    assert failed.returncode != 0 and 'password "admin"' in failed.stderr


def test_every_run_reapplies_role_passwords(pg, scripts, migrations):
    assert _bootstrap(pg, scripts, migrations).returncode == 0
    rotated = _bootstrap(pg, scripts, migrations, APP_PASSWORD="Rotated77", READER_PASSWORD="Rot2")
    assert rotated.returncode == 0, rotated.stderr
    assert (
        pg.psql("SELECT 1", user=APP_USER, password="Rotated77", db=APP_DB, check=False).returncode
        == 0
    )
    assert (
        pg.psql(
            "SELECT 1", user=APP_USER, password=PASSWORDS["app"], db=APP_DB, check=False
        ).returncode
        != 0
    )
    assert pg.psql("SELECT 1", user=READER, password="Rot2", db=APP_DB, check=False).returncode == 0


def _wait(pg, scripts, migrations, password=PASSWORDS["app"]) -> subprocess.Popen:
    env = {
        **os.environ,
        "PATH": f"{pg.bindir}:{os.environ['PATH']}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg.port),
        "PGUSER": APP_USER,
        "PGPASSWORD": password,
        "PGDATABASE": APP_DB,
        "MIGRATIONS_DIR": str(migrations),
    }
    return subprocess.Popen(
        ["sh", str(scripts / "wait-for-schema.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_api_waits_until_every_migration_of_its_image_is_applied(pg, scripts, migrations):
    assert _bootstrap(pg, scripts, migrations).returncode == 0
    done = _wait(pg, scripts, migrations)
    assert done.wait(timeout=30) == 0, done.stdout.read()
    # a newer image ships another migration: its API pods wait for the new bootstrap Job
    (migrations / "004_new.sql").write_text("CREATE TABLE pganalytics.upgraded (id int);\n")
    waiting = _wait(pg, scripts, migrations)
    time.sleep(3)
    assert waiting.poll() is None, "the API must not start on an older schema"
    assert _bootstrap(pg, scripts, migrations).returncode == 0
    assert waiting.wait(timeout=30) == 0


def test_dashboard_queries_run_as_the_reader(pg, scripts, migrations):
    assert _bootstrap(pg, scripts, migrations).returncode == 0
    queries = 0
    for path in sorted((CHART / "dashboards").glob("*.json")):
        dash = json.loads(path.read_text())
        var = dash["templating"]["list"][0]
        assert _as(pg, READER, var["query"]).returncode == 0, (path.name, var["query"])
        for panel in dash["panels"]:
            for target in panel["targets"]:
                sql = re.sub(
                    r"\$__timeGroupAlias\((\w+), \$__interval\)",
                    r"date_trunc('minute', \1) AS time",
                    target["rawSql"],
                )
                sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 > now() - interval '6 hours'", sql)
                sql = sql.replace("$collector", "'00000000-0000-0000-0000-000000000000'")
                assert "$" not in sql.replace("$$", ""), f"unhandled macro in {path.name}: {sql}"
                r = _as(pg, READER, sql)
                assert r.returncode == 0, (path.name, panel["title"], r.stderr)
                queries += 1
    assert queries >= 10


def test_external_server_with_a_non_superuser_admin(pg, scripts, migrations):
    """externalDatabase.admin may be a CREATEROLE/CREATEDB role (managed PostgreSQL)."""
    pg.psql("CREATE ROLE dbadmin LOGIN CREATEROLE CREATEDB PASSWORD 'AdminPw1'")
    run = _bootstrap(
        pg, scripts, migrations, PGUSER="dbadmin", PGPASSWORD="AdminPw1", OWNS_SERVER="false"
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert _applied(run.stdout) == ["001_contract.sql", "002_more.sql", "003_notes.sql"]
    assert _as(pg, APP_USER, "INSERT INTO collector_notes (note) VALUES ('x')").returncode == 0
    assert _as(pg, READER, "SELECT count(*) FROM metrics_pg_stats_query").returncode == 0
    assert _admin_login(pg, PASSWORDS["admin"])
    member = f"SELECT pg_has_role('{APP_USER}', 'pg_monitor', 'member')"
    assert pg.psql(member).stdout.strip() == "f"
    # the app's schema belongs to the owner role there too, and the admin role stays as it was
    owner = (
        "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'pganalytics.users'::regclass"
    )
    assert pg.psql(owner, db=APP_DB).stdout.strip() == OWNER
    assert pg.psql("SELECT rolsuper FROM pg_roles WHERE rolname = 'dbadmin'").stdout.strip() == "f"


# --- issue 18: migrations as the owner role, the collector's monitoring role ---------------


def test_migrations_run_as_the_owner_role_not_the_superuser(pg, scripts, migrations):
    assert _bootstrap(pg, scripts, migrations).returncode == 0
    owners = pg.psql(
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'pganalytics'",
        db=APP_DB,
    ).stdout.split()
    assert owners == [OWNER]
    flags = pg.psql(
        f"SELECT rolsuper, rolcanlogin, rolcreaterole, rolpassword IS NULL FROM pg_authid"
        f" WHERE rolname = '{OWNER}'"
    ).stdout.strip()
    assert flags == "f|f|f|t", "the owner logs in only during a run, and never as superuser"
    # a migration may not do what only a superuser may: the run fails, the server is unchanged
    (migrations / "004_superuser.sql").write_text("ALTER ROLE postgres PASSWORD 'Pwned1';\n")
    failed = _bootstrap(pg, scripts, migrations)
    assert failed.returncode != 0 and "must be superuser" in failed.stderr, failed.stderr
    assert "owner's session" in failed.stderr
    assert pg.psql("SELECT 1", password="Pwned1", check=False).returncode != 0
    assert pg.psql("SELECT 1", password=PASSWORDS["super"]).returncode == 0
    flags = pg.psql(f"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{OWNER}'").stdout
    assert flags.strip() == "f"


def test_the_owner_may_create_roles_only_while_such_a_migration_is_pending(pg, scripts, migrations):
    assert _bootstrap(pg, scripts, migrations).returncode == 0
    # 001 created pganalytics_app_readonly (as 3.3.0's 001_init.sql does): done, so no longer
    (migrations / "004_role.sql").write_text("SELECT 1;\n")
    run = _bootstrap(pg, scripts, migrations)
    assert run.returncode == 0 and "CREATEROLE" not in run.stdout, run.stdout
    (migrations / "005_role.sql").write_text("CREATE ROLE pganalytics_app_extra;\n")
    run = _bootstrap(pg, scripts, migrations)
    assert run.returncode == 0 and "CREATEROLE for the owner" in run.stdout, run.stdout + run.stderr
    assert (
        pg.psql(f"SELECT rolcreaterole FROM pg_roles WHERE rolname = '{OWNER}'").stdout.strip()
        == "f"
    )


def test_an_earlier_superuser_schema_passes_to_the_owner(pg, scripts, migrations):
    """Before this version the bootstrap applied the migrations as the superuser."""
    pg.psql(f"CREATE DATABASE {APP_DB}")
    pg.psql(f"CREATE DATABASE {METRICS_DB}")
    setup = (
        "CREATE SCHEMA pganalytics_bootstrap; CREATE TABLE pganalytics_bootstrap.schema_migrations"
        " (version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL"
        " DEFAULT now());"
        + _contract_migration()
        + "CREATE TABLE pganalytics.collector_notes (id bigserial PRIMARY KEY, note text);"
        + "CREATE FUNCTION pganalytics.touch() RETURNS int LANGUAGE sql AS 'SELECT 1';"
        + "INSERT INTO pganalytics_bootstrap.schema_migrations VALUES"
        " ('001_contract.sql', 'x'), ('002_more.sql', 'x');"
    )
    pg.psql(setup, db=APP_DB)
    (migrations / "003_notes.sql").write_text(
        "ALTER TABLE pganalytics.collector_notes ADD seen boolean;\n"
        "CREATE OR REPLACE FUNCTION pganalytics.touch() RETURNS int LANGUAGE sql AS 'SELECT 2';\n"
    )
    run = _bootstrap(pg, scripts, migrations)
    assert run.returncode == 0, run.stdout + run.stderr
    assert _applied(run.stdout) == ["003_notes.sql"]
    owner = "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = '{}'::regclass"
    for rel in (
        "pganalytics.collector_notes",
        "pganalytics.collector_notes_id_seq",
        "pganalytics.users",
    ):
        assert pg.psql(owner.format(rel), db=APP_DB).stdout.strip() == OWNER, rel
    assert (
        _as(pg, APP_USER, "INSERT INTO collector_notes (note, seen) VALUES ('x', true)").returncode
        == 0
    )


def test_the_monitoring_role_reads_statistics_and_no_app_data(pg, scripts, migrations):
    assert _bootstrap(pg, scripts, migrations).returncode == 0
    flags = pg.psql(
        f"SELECT rolsuper, rolcreaterole, rolcreatedb, pg_has_role('{MONITOR}', 'pg_monitor',"
        f" 'member') FROM pg_roles WHERE rolname = '{MONITOR}'"
    ).stdout.strip()
    assert flags == "f|f|f|t"
    for db in (APP_DB, METRICS_DB):
        r = _as(pg, MONITOR, "SELECT count(*) FROM pg_stat_activity WHERE query <> ''", db=db)
        assert r.returncode == 0, r.stderr
    assert _as(pg, MONITOR, "SELECT count(*) FROM pg_ls_waldir()").returncode == 0
    assert _as(pg, MONITOR, "SELECT count(*) FROM pg_stat_user_tables").returncode == 0
    # the migrations' grants to pg_monitor on collected statistics are taken back
    for sql in (
        "SELECT count(*) FROM pganalytics.users",
        "SELECT count(*) FROM metrics_pg_stats_query",
        "CREATE TABLE public.mine (id int)",
    ):
        assert _as(pg, MONITOR, sql).returncode != 0, sql
    read_only = _as(pg, MONITOR, "SHOW default_transaction_read_only").stdout.strip()
    assert read_only == "on"
    # its password is re-applied on every run (a rotated Secret)
    rotated = _bootstrap(pg, scripts, migrations, MONITOR_PASSWORD="MonRot8")
    assert rotated.returncode == 0
    assert (
        pg.psql("SELECT 1", user=MONITOR, password="MonRot8", db=APP_DB, check=False).returncode
        == 0
    )


def test_role_passwords_never_reach_the_server_log(pg, scripts, migrations):
    pg.psql("ALTER SYSTEM SET log_statement = 'all'")
    pg.psql("SELECT pg_reload_conf()")
    try:
        assert _bootstrap(pg, scripts, migrations).returncode == 0
    finally:
        pg.psql("ALTER SYSTEM RESET log_statement")
        pg.psql("SELECT pg_reload_conf()")
    log = (pg.tmp / "server.log").read_text()
    for secret in (PASSWORDS["app"], PASSWORDS["monitor"], PASSWORDS["reader"]):
        assert secret not in log
