"""Manual check of the chart against the real pgAnalytics backend (docs/APP_CONTRACT.md).

Not a CI test (CI has no upstream source). Needs root (the TimescaleDB stand-in goes into the
server's extension directory for the run) and a private network namespace, because the
backend binds every interface:

    unshare -n sh -c 'ip link set lo up; .venv/bin/python -m tests.chart.verify_real_backend \
        --migrations <upstream checkout>/backend/migrations --backend <built pganalytics-api>'

It renders the chart for prod as the Pulumi program does, prepares a local PostgreSQL with
the rendered init script and bootstrap Job, starts the backend with the rendered env (only
the database host rewritten) and prints each step with its HTTP status.

With `--pgbouncer <pgbouncer binary>` (1.21 or newer: max_prepared_statements) it renders the
CloudNativePG database instead (database.mode cloudnativepg) and puts a real PgBouncer, set up
from the rendered Pooler (pool mode, max_client_conn, default_pool_size,
max_prepared_statements), between the backend and PostgreSQL, as the Pooler's Service is. The
database is prepared as the operator would from the rendered Cluster (EMULATED: the initdb
steps, postInitTemplateSQL, postInitApplicationSQL and managed roles run here as SQL; no
operator). It then drives `--load` concurrent collectors through the pooler and reports the
server connections PgBouncer used. `--no-binary-parameters` removes binary_parameters=yes from
the backend's URLs, to show what it is there for.
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

from .conftest import (
    CHART,
    CNPG_VALUES,
    PROGRAM_SECRET,
    PROGRAM_VALUES,
    RELEASE,
    deep_merge,
    find,
    render,
)

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


def secret_files(pod_spec, cred, work: Path) -> dict[str, str]:
    """The pod's Secret volumes as files under `work`: mount path of each file -> its copy."""
    mounts = {}
    for c in pod_spec["containers"]:
        for m in c.get("volumeMounts", []):
            mounts[m["name"]] = m["mountPath"]
    found = {}
    for v in pod_spec.get("volumes", []):
        if "secret" not in v or v["name"] not in mounts:
            continue
        d = work / f"secret-{v['name']}"
        d.mkdir(exist_ok=True)
        for item in v["secret"]["items"]:
            (d / item["path"]).write_text(cred[item["key"]])
            found[f"{mounts[v['name']]}/{item['path']}"] = str(d / item["path"])
    return found


def resolved_env(container, cred, base=None, files=None) -> dict[str, str]:
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
        env[e["name"]] = (files or {}).get(value, value)
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
    ap.add_argument("--pgbouncer", type=Path, help="pgbouncer binary: go through the Pooler")
    ap.add_argument("--load", type=int, default=40, help="concurrent collectors (--pgbouncer)")
    ap.add_argument("--no-binary-parameters", action="store_true")
    args = ap.parse_args()
    if args.pgbouncer:
        verify_pooler(args)
        return

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
            yield Server(
                pg, work, mig, scripts, init, db_container, tsdb["spec"]["template"]["spec"]
            )
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
    db_pod: dict  # its pod spec (the Secret volume of the passwords)


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
        env={
            **base,
            **resolved_env(
                server.db_container, cred, files=secret_files(server.db_pod, cred, server.work)
            ),
        },
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
    gf_pod = find(objs, "Deployment", f"{P}-grafana")["spec"]["template"]["spec"]
    secrets = next(v for v in gf_pod["volumes"] if v["name"] == "secrets")["projected"]
    ref = next(
        i
        for s in secrets["sources"]
        for i in s["secret"]["items"]
        if i["path"] == "datasource-password"
    )
    gpw = cred[ref["key"]]
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
        "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin,"
        " pg_has_role(rolname, 'pg_monitor', 'member') FROM pg_roles"
        f" WHERE rolname IN ('pganalytics', '{ds['user']}', 'pganalytics_owner',"
        " 'pganalytics_monitor') ORDER BY 1"
    ).stdout.strip()
    print("roles (name|super|createdb|createrole|login|pg_monitor):", flags.replace("\n", "; "))
    owners = pg.psql(
        "SELECT string_agg(DISTINCT pg_get_userbyid(c.relowner), ',') FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname IN ('pganalytics', 'metrics') OR c.relname LIKE 'metrics_pg_%'",
        db="pganalytics",
    ).stdout.strip()
    print("owners of the migrated tables, views and sequences:", owners)
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


def pgbouncer_config(objs, work: Path, pg_port: int, cred: dict, roles: list[str]) -> Path:
    """pgbouncer.ini from the rendered Pooler; PostgreSQL on 127.0.0.1. Auth: scram-sha-256
    against a userlist (CloudNativePG's Pooler uses an auth_query instead: same check)."""
    pooler = next(o for o in objs if o["kind"] == "Pooler")
    pb = pooler["spec"]["pgbouncer"]
    users = work / "userlist.txt"
    users.write_text("".join(f'"{r}" "{pw}"\n' for r, pw in roles))
    port = _free_port()
    ini = work / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={pg_port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {users}\n"
        f"pool_mode = {pb['poolMode']}\n"
        + "".join(f"{k} = {v}\n" for k, v in pb["parameters"].items())
        + "admin_users = pgbouncer_admin\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    return ini


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def verify_pooler(args) -> None:
    objs = render("values-prod.yaml", values=deep_merge(PROGRAM_VALUES, CNPG_VALUES))
    cluster = next(o for o in objs if o["kind"] == "Cluster")
    cred = credentials()
    work = Path(tempfile.mkdtemp(prefix="pga-verify-pooler-"))
    work.chmod(0o755)
    mig = work / "migrations"
    shutil.copytree(args.migrations, mig)
    scripts = work / "scripts"
    scripts.mkdir()
    for name, text in find(objs, "ConfigMap", f"{P}-bootstrap")["data"].items():
        (scripts / name).write_text(text)
    subprocess.run(["chmod", "-R", "a+rX", str(work)], check=True)
    params = {k: str(v) for k, v in cluster["spec"]["postgresql"]["parameters"].items()}
    settings = {k: v for k, v in params.items() if not k.startswith("timescaledb.")}
    settings["shared_preload_libraries"] = "pg_stat_statements"  # no TimescaleDB library here
    print("rendered Cluster parameters:", params)
    with PostgresServer(settings=settings) as pg:
        ext = Path(f"/usr/share/postgresql/{pg.version}/extension")
        (ext / "timescaledb.control").write_text(STANDIN_CONTROL)
        (ext / "timescaledb--0.0.0.sql").write_text(STANDIN_SQL)
        try:
            _pooler_run(args, pg, objs, cluster, cred, work, mig, scripts)
        finally:
            for f in ext.glob("timescaledb*"):
                f.unlink()
    shutil.rmtree(work, ignore_errors=True)


def _operator_initdb(pg, cluster, cred) -> None:
    """EMULATED: what the operator does for the rendered Cluster on a new instance."""
    init = cluster["spec"]["bootstrap"]["initdb"]
    pg.psql(f"ALTER ROLE postgres PASSWORD '{cred['postgres-password']}'")
    for sql in init["postInitTemplateSQL"]:
        pg.psql(sql, db="template1")
    owner, app_db = init["owner"], init["database"]
    pg.psql(f"CREATE ROLE {owner} LOGIN PASSWORD '{cred['database-password']}'")
    pg.psql(f"CREATE DATABASE {app_db} OWNER {owner}")
    for sql in init["postInitApplicationSQL"]:
        pg.psql(sql, db=app_db)
    passwords = {"pganalytics-cnpg-app": "database-password",
                 "pganalytics-cnpg-grafana": "grafana-admin-password"}  # fmt: skip
    for role in cluster["spec"]["managed"]["roles"]:
        pw = cred[passwords[role["passwordSecret"]["name"]]]
        if role["name"] != owner:
            pg.psql(f"CREATE ROLE {role['name']} LOGIN PASSWORD '{pw}'")
        for member_of in role.get("inRoles", []):
            pg.psql(f"GRANT {member_of} TO {role['name']}")
    pg.require_passwords()


def _pooler_run(args, pg, objs, cluster, cred, work, mig, scripts) -> None:
    _operator_initdb(pg, cluster, cred)
    host, port = "127.0.0.1", str(pg.port)
    path = f"{pg.bindir}:{os.environ['PATH']}"
    base = {**os.environ, "PATH": path, "PGPASSWORD": cred["postgres-password"]}
    job = next(o for o in objs if o["kind"] == "Job")
    jenv = {**base, **resolved_env(job["spec"]["template"]["spec"]["containers"][0], cred)}
    print("bootstrap Job PGHOST:", jenv["PGHOST"], "(the primary's Service)")
    jenv.update(PGHOST=host, PGPORT=port, PGSSLMODE="disable", MIGRATIONS_DIR=str(mig))
    jenv.update(SCRIPTS_DIR=str(scripts), TMPDIR=str(work))
    r = subprocess.run(["sh", str(scripts / "bootstrap.sh")], env=jenv, capture_output=True,
                       text=True)  # fmt: skip
    print("bootstrap: exit", r.returncode, "applied", r.stdout.count("applying"))
    if r.returncode:
        print(r.stdout[-2000:], r.stderr[-2000:])
        return

    roles = [("pganalytics", cred["database-password"])]
    ini = pgbouncer_config(objs, work, pg.port, cred, roles)
    bouncer_port = re.search(r"listen_port = (\d+)", ini.read_text()).group(1)
    print("PgBouncer:", subprocess.run([str(args.pgbouncer), "--version"], capture_output=True,
                                        text=True).stdout.splitlines()[0])  # fmt: skip
    print("pgbouncer.ini:", " ".join(line for line in ini.read_text().splitlines()
                                    if "pool" in line or "max_" in line))  # fmt: skip
    # PgBouncer refuses to run as root.
    as_user = ["-u", "postgres"] if os.geteuid() == 0 else []
    bouncer_log = open(work / "pgbouncer.log", "w")  # noqa: SIM115 - lives as long as the process
    bouncer = subprocess.Popen([str(args.pgbouncer), *as_user, str(ini)], stdout=bouncer_log,
                               stderr=subprocess.STDOUT)  # fmt: skip
    sts = find(objs, "StatefulSet", f"{P}-backend")
    spec = sts["spec"]["template"]["spec"]
    cm = find(objs, "ConfigMap", f"{P}-backend")["data"]
    benv = resolved_env(spec["containers"][0], cred, cm)
    pooler_host = next(o for o in objs if o["kind"] == "Pooler")["metadata"]["name"]
    for key in ("DATABASE_URL", "TIMESCALE_URL"):
        print(f"rendered {key}:", benv[key].replace(cred["database-password"], "***"))
        url = benv[key].replace(f"@{pooler_host}:5432/", f"@127.0.0.1:{bouncer_port}/")
        url = url.replace("sslmode=require", "sslmode=disable")  # no TLS on loopback here
        if args.no_binary_parameters:
            url = url.replace("&binary_parameters=yes", "")
        benv[key] = url
    log = open(work / "backend.log", "w")  # noqa: SIM115 - lives as long as the process
    api_proc = subprocess.Popen([str(args.backend)], env={"PATH": path, **benv}, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
    api = Api(f"http://127.0.0.1:{benv['PORT']}")
    try:
        exercise(api, pg, objs, cred)
        load(api, cred, args.load)
        print("server connections to PostgreSQL (pg_stat_activity, app role):",
              pg.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'pganalytics'")
              .stdout.strip())  # fmt: skip
        errors = [line for line in (work / "backend.log").read_text().splitlines()
                  if "prepared statement" in line or "does not exist" in line]  # fmt: skip
        print("backend log lines about prepared statements:", len(errors), errors[:3])
    except Exception:
        print("backend log:", (work / "backend.log").read_text()[-3000:])
        print("pgbouncer log:", (work / "pgbouncer.log").read_text()[-3000:])
        raise
    finally:
        api_proc.terminate()
        api_proc.wait()
        bouncer.terminate()
        bouncer.wait()


def load(api, cred, collectors: int) -> None:
    """`collectors` collectors register and push 5 times each, all at once."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> list[int]:
        body = {"name": f"load-{i}", "hostname": f"load-{i}"}
        status, reg = api.call("POST", "/api/v1/collectors/register", body,
                               {"X-Registration-Secret": cred["registration-secret"]})  # fmt: skip
        if status != 200:
            return [status]
        codes = [status]
        for n in range(5):
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            query = {"hash": 1000 * i + n, "text": "SELECT 1", "calls": 1, "total_time": 1.0,
                     "mean_time": 1.0, "rows": 1}  # fmt: skip
            push = {"collector_id": reg["collector_id"], "hostname": body["hostname"],
                    "timestamp": now, "metrics_count": 1,
                    "metrics": [{"type": "pg_query_stats", "database": "pganalytics",
                                 "timestamp": now, "queries": [query]}]}  # fmt: skip
            codes.append(api.call("POST", "/api/v1/metrics/push", push,
                                  {"Authorization": "Bearer " + reg["token"]})[0])  # fmt: skip
        return codes

    started = time.monotonic()
    with ThreadPoolExecutor(collectors) as pool:
        results = [c for codes in pool.map(one, range(collectors)) for c in codes]
    summary = {code: results.count(code) for code in sorted(set(results))}
    print(f"{collectors} collectors x (register + 5 pushes) in {time.monotonic() - started:.1f}s: "
          f"HTTP status counts {summary}")  # fmt: skip


if __name__ == "__main__":
    main()
