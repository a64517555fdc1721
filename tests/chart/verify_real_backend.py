"""Manual check of the chart against the real pgAnalytics backend (docs/APP_CONTRACT.md).

Not a CI test (CI has no upstream source). Needs root (the TimescaleDB stand-in goes into the
server's extension directory for the run) and a private network namespace, because the
backend binds every interface:

    unshare -n sh -c 'ip link set lo up; .venv/bin/python -m tests.chart.verify_real_backend \
        --migrations <upstream checkout>/backend/migrations --backend <built pganalytics-api>'

It renders the chart for prod as the Pulumi program does, prepares a local PostgreSQL with
the rendered init script and bootstrap Job, starts the backend with the rendered env (only
the database host rewritten) and prints each step with its HTTP status.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from tests.conftest import credential_keys
from tests.support.postgres import PostgresServer

from .conftest import CHART, PROGRAM_SECRET, PROGRAM_VALUES, RELEASE, find, render

P = f"{RELEASE}-pganalytics"
# STAND-IN, not TimescaleDB: no-op hypertable functions so the migrations run on plain PostgreSQL.
STANDIN_CONTROL = """# STAND-IN for a local verification: NOT TimescaleDB.
comment = 'STAND-IN (not TimescaleDB): no-op create_hypertable and add_retention_policy'
default_version = '0.0.0'
relocatable = true
"""
STANDIN_SQL = """-- STAND-IN, not TimescaleDB.
CREATE FUNCTION create_hypertable(relation regclass, time_column_name name,
    if_not_exists boolean DEFAULT false, migrate_data boolean DEFAULT false,
    chunk_time_interval interval DEFAULT NULL)
RETURNS TABLE(hypertable_id int, schema_name name, table_name name, created boolean)
LANGUAGE sql AS $$ SELECT 0, NULL::name, NULL::name, false $$;
CREATE FUNCTION add_retention_policy(relation regclass, drop_after interval,
    if_not_exists boolean DEFAULT false) RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;
"""


def credentials() -> dict[str, str]:
    """The credentials Secret as the program generates it (alphanumeric passwords)."""
    cred = {k: secrets.token_hex(16) for k in credential_keys()}
    cred["encryption-key"] = base64.b64encode(os.urandom(32)).decode()
    cred["grafana-admin-user"] = "admin"
    return cred


def resolved_env(container, cred, base=None) -> dict[str, str]:
    env = dict(base or {})
    for e in container.get("env", []):
        if "value" in e:
            value = e["value"]
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            assert ref["name"] == PROGRAM_SECRET, ref
            value = cred[ref["key"]]
        for name, old in env.items():
            value = value.replace(f"$({name})", old)
        env[e["name"]] = value
    return env


def grafana_sql(sql: str, collector: str) -> str:
    sql = re.sub(
        r"\$__timeGroupAlias\((\w+), \$__interval\)", r"date_trunc('minute', \1) AS time", sql
    )
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 > now() - interval '6 hours'", sql)
    return sql.replace("$collector", f"'{collector}'")


class Api:
    def __init__(self, base: str):
        self.base = base

    def call(self, method, path, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        req = urllib.request.Request(self.base + path, method=method, data=data, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()[:200]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--migrations", required=True, type=Path, help="upstream backend/migrations")
    ap.add_argument("--backend", required=True, type=Path, help="built pganalytics-api binary")
    args = ap.parse_args()

    objs = render("values-prod.yaml", values=PROGRAM_VALUES)
    cred = credentials()
    with local_server(objs, args.migrations) as server:
        verify(server, objs, cred, args.backend)


@contextlib.contextmanager
def local_server(objs, migrations: Path):
    """PostgreSQL 15 with the rendered server arguments (no TimescaleDB library), the
    TimescaleDB stand-in installed for the run, and a scratch directory holding the
    migrations, the rendered bootstrap scripts and init script."""
    work = Path(tempfile.mkdtemp(prefix="pga-verify-"))
    work.chmod(0o755)
    mig = work / "migrations"
    shutil.copytree(migrations, mig)  # what the image's COPY backend/migrations ships
    scripts = work / "scripts"
    scripts.mkdir()
    for name, text in find(objs, "ConfigMap", f"{P}-bootstrap")["data"].items():
        (scripts / name).write_text(text)
    init = work / "010-pganalytics.sh"
    init.write_text(find(objs, "ConfigMap", f"{P}-timescaledb")["data"]["010-pganalytics.sh"])
    subprocess.run(["chmod", "-R", "a+rX", str(work)], check=True)

    tsdb = find(objs, "StatefulSet", f"{P}-timescaledb")
    db_container = tsdb["spec"]["template"]["spec"]["containers"][0]
    settings = dict(a.split("=", 1) for a in db_container["args"][1::2])
    print("rendered server settings:", settings)
    settings["shared_preload_libraries"] = "pg_stat_statements"  # no TimescaleDB library here

    with PostgresServer(settings=settings) as pg:
        ext = (
            Path(
                subprocess.run(
                    [str(pg.bindir / "pg_config"), "--sharedir"], capture_output=True, text=True
                ).stdout.strip()
                or f"/usr/share/postgresql/{pg.version}"
            )
            / "extension"
        )
        (ext / "timescaledb.control").write_text(STANDIN_CONTROL)
        (ext / "timescaledb--0.0.0.sql").write_text(STANDIN_SQL)
        try:
            yield Server(pg, work, mig, scripts, init, db_container)
        finally:
            for f in ext.glob("timescaledb*"):
                f.unlink()
    shutil.rmtree(work, ignore_errors=True)


@dataclasses.dataclass
class Server:
    """The local server of one verification run and the files the chart gives it."""

    pg: PostgresServer
    work: Path  # scratch directory
    mig: Path  # the upstream migrations, as the backend image ships them
    scripts: Path  # the rendered bootstrap ConfigMap's files
    init: Path  # the rendered init script of the TimescaleDB StatefulSet
    db_container: dict  # the rendered TimescaleDB container


def verify(server: Server, objs, cred, backend_bin) -> None:
    pg = server.pg
    bootstrap(server, objs, cred, parallel_runs=3)
    api_proc, api = start_backend(server, objs, cred, backend_bin)
    try:
        exercise(api, pg, objs, cred)
        pg.stop()
        print(
            "database stopped: GET /api/v1/health ->",
            api.call("GET", "/api/v1/health")[0],
            "| GET /version ->",
            api.call("GET", "/version")[0],
        )
    finally:
        api_proc.terminate()
        api_proc.wait()


def _base_env(server: Server, cred) -> dict[str, str]:
    pg = server.pg
    base = {**os.environ, "PATH": f"{pg.bindir}:{os.environ['PATH']}"}
    base.update(PGHOST="127.0.0.1", PGPORT=str(pg.port), PGPASSWORD=cred["postgres-password"])
    return base


def bootstrap(server: Server, objs, cred, parallel_runs: int = 0) -> None:
    """The rendered init script, the bootstrap Job (once, then `parallel_runs` at a time) and
    the API's wait-for-schema init container, each with its rendered env."""
    pg, work, mig, scripts = server.pg, server.work, server.mig, server.scripts
    pg.psql(f"ALTER ROLE postgres PASSWORD '{cred['postgres-password']}'")
    pg.require_passwords()
    host, port = "127.0.0.1", str(pg.port)
    base = _base_env(server, cred)
    r = subprocess.run(
        ["sh", str(server.init)],
        env={**base, **resolved_env(server.db_container, cred)},
        capture_output=True,
    )
    print("init script (010-pganalytics.sh): exit", r.returncode)

    job = next(o for o in objs if o["kind"] == "Job")
    jenv = {**base, **resolved_env(job["spec"]["template"]["spec"]["containers"][0], cred)}
    jenv.update(PGHOST=host, PGPORT=port, MIGRATIONS_DIR=str(mig), SCRIPTS_DIR=str(scripts))
    jenv["TMPDIR"] = str(work)

    def run_job():
        return subprocess.Popen(
            ["sh", str(scripts / "bootstrap.sh")],
            env=jenv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    start = time.monotonic()
    first = run_job()
    out = first.communicate()[0]
    applied = re.findall(r"bootstrap: applying (\S+)", out)
    print(
        f"bootstrap Job {job['metadata']['name']}: exit {first.returncode} in "
        f"{time.monotonic() - start:.1f}s, applied {len(applied)}: {' '.join(applied)}"
    )
    if parallel_runs:
        runs = [run_job() for _ in range(parallel_runs)]
        outs = [p.communicate()[0] for p in runs]
        print(
            f"bootstrap x{parallel_runs} in parallel: exit",
            [p.returncode for p in runs],
            "applied again:",
            sum(o.count("applying") for o in outs),
        )

    sts = find(objs, "StatefulSet", f"{P}-backend")
    spec = sts["spec"]["template"]["spec"]
    wait = next(c for c in spec["initContainers"] if c["name"] == "wait-for-schema")
    wenv = {**base, **resolved_env(wait, cred), "PGHOST": host, "PGPORT": port}
    wenv["MIGRATIONS_DIR"] = str(mig)
    r = subprocess.run(
        ["sh", str(scripts / "wait-for-schema.sh")],
        env=wenv,
        capture_output=True,
        text=True,
        timeout=60,
    )
    print("wait-for-schema:", r.returncode, r.stdout.strip())


def start_backend(server: Server, objs, cred, backend_bin) -> tuple[subprocess.Popen, Api]:
    """The API with exactly the rendered env of the backend container (ConfigMap + env,
    $(DATABASE_PASSWORD) expanded), only the database host and port rewritten; its log
    (gin's one line per request) goes to <work>/backend.log."""
    pg = server.pg
    spec = find(objs, "StatefulSet", f"{P}-backend")["spec"]["template"]["spec"]
    cm = find(objs, "ConfigMap", f"{P}-backend")["data"]
    benv = resolved_env(spec["containers"][0], cred, cm)
    for key in ("DATABASE_URL", "TIMESCALE_URL"):
        benv[key] = benv[key].replace(f"@{P}-timescaledb:5432/", f"@127.0.0.1:{pg.port}/")
    log = open(server.work / "backend.log", "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [str(backend_bin)],
        env={"PATH": _base_env(server, cred)["PATH"], **benv},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, Api(f"http://127.0.0.1:{benv['PORT']}")


def exercise(api, pg, objs, cred) -> None:
    for _ in range(60):
        try:
            status, body = api.call("GET", "/api/v1/health")
            break
        except OSError:
            time.sleep(0.5)
    print("GET /api/v1/health ->", status, body)
    reg_body = {"name": "bundled", "hostname": f"{P}-collector-bundled"}
    status, reg = api.call(
        "POST",
        "/api/v1/collectors/register",
        reg_body,
        {"X-Registration-Secret": cred["registration-secret"]},
    )
    print("POST /api/v1/collectors/register (secret from the Secret) ->", status)
    wrong = api.call(
        "POST", "/api/v1/collectors/register", reg_body, {"X-Registration-Secret": "wrong"}
    )[0]
    print("POST /api/v1/collectors/register (wrong secret) ->", wrong)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    query = {
        "hash": 4242,
        "text": "SELECT 1",
        "calls": 7,
        "total_time": 3.5,
        "mean_time": 0.5,
        "rows": 7,
    }
    push = {
        "collector_id": reg["collector_id"],
        "hostname": reg_body["hostname"],
        "timestamp": now,
        "metrics_count": 1,
        "metrics": [
            {
                "type": "pg_query_stats",
                "database": "pganalytics",
                "timestamp": now,
                "queries": [query],
            }
        ],
    }
    status, body = api.call(
        "POST", "/api/v1/metrics/push", push, {"Authorization": "Bearer " + reg["token"]}
    )
    print("POST /api/v1/metrics/push ->", status, body.get("metrics_inserted"))
    ds_yaml = find(objs, "ConfigMap", f"{P}-grafana-provisioning")["data"]["datasources.yaml"]
    ds = yaml.safe_load(ds_yaml)["datasources"][0]
    gf = find(objs, "Deployment", f"{P}-grafana")["spec"]["template"]["spec"]["containers"][0]
    ref = next(e for e in gf["env"] if e["name"] == "GF_PGANALYTICS_DB_PASSWORD")
    gpw = cred[ref["valueFrom"]["secretKeyRef"]["key"]]
    db = ds["jsonData"]["database"]
    rows = pg.psql(
        "SELECT count(*) FROM metrics_pg_stats_query WHERE query_hash = 4242",
        user=ds["user"],
        password=gpw,
        db=db,
    ).stdout.strip()
    print(f"rows seen by the Grafana datasource ({ds['user']}@{db}):", rows)
    denied = (
        pg.psql(
            "DELETE FROM metrics_pg_stats_query", user=ds["user"], password=gpw, db=db, check=False
        )
        .stderr.strip()
        .splitlines()
    )
    print(f"DELETE as {ds['user']}:", denied[0] if denied else "ALLOWED")
    flags = pg.psql(
        "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole,"
        " pg_has_role(rolname, 'pg_monitor', 'member') FROM pg_roles"
        f" WHERE rolname IN ('pganalytics', '{ds['user']}') ORDER BY 1"
    ).stdout.strip()
    print("roles (name|super|createdb|createrole|pg_monitor):", flags.replace("\n", "; "))
    ok = total = 0
    for path in sorted((CHART / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                total += 1
                sql = grafana_sql(target["rawSql"], reg["collector_id"])
                ok += (
                    pg.psql(sql, user=ds["user"], password=gpw, db=db, check=False).returncode == 0
                )
    print(f"dashboard queries as {ds['user']}: {ok}/{total} ok")
    login = {"username": "admin", "password": cred["admin-password"]}
    print(
        "POST /api/v1/auth/login admin/<admin-password> ->",
        api.call("POST", "/api/v1/auth/login", login)[0],
    )
    print(
        "POST /api/v1/auth/login admin/admin ->",
        api.call("POST", "/api/v1/auth/login", {**login, "password": "admin"})[0],
    )


if __name__ == "__main__":
    main()
