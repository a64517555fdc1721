"""The data the backup tests write and compare: two databases shaped like pgAnalytics'
(an application database owned by the application role, and a metrics database of
time-series rows), on plain PostgreSQL."""

from __future__ import annotations

APP_ROLE = "pganalytics"
DATABASES = ("pganalytics", "metrics")
# What the restore Job gives both restore scripts (templates/backup-restore-job.yaml).
RESTORE_ENV = {"RESTORE_OWNER": APP_ROLE, "RESTORE_ALLOWED_DATABASES": " ".join(DATABASES)}

SCHEMA = {
    "pganalytics": """
        CREATE TABLE users (id bigserial PRIMARY KEY, email text UNIQUE NOT NULL,
                            created_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE servers (id bigserial PRIMARY KEY, name text NOT NULL,
                              owner_id bigint REFERENCES users(id), settings jsonb);
        INSERT INTO users (email) SELECT 'user' || g || '@example.com'
            FROM generate_series(1, {users}) g;
        INSERT INTO servers (name, owner_id, settings)
            SELECT 'db-' || g, 1 + g % {users}, jsonb_build_object('port', 5432, 'n', g)
            FROM generate_series(1, {servers}) g;
    """,
    "metrics": """
        CREATE TABLE query_stats (time timestamptz NOT NULL, server_id int NOT NULL,
                                  queryid bigint NOT NULL, calls bigint, total_ms double precision);
        CREATE INDEX ON query_stats (server_id, time DESC);
        INSERT INTO query_stats
            SELECT timestamptz '2026-01-01' + g * interval '10 seconds', g % 50,
                   (g::bigint * 7919) % 100003, g % 1000, (g % 997) * 1.5
            FROM generate_series(1, {metrics}) g;
    """,
}
TABLES = {"pganalytics": ("users", "servers"), "metrics": ("query_stats",)}


def seed(pg, users: int = 500, servers: int = 2_000, metrics: int = 50_000) -> None:
    """Creates the role and both databases, owned by the role, and fills them."""
    pg.psql(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD 'app-secret-for-tests'")
    for db in DATABASES:
        pg.psql(f"CREATE DATABASE {db} OWNER {APP_ROLE}")
        sql = SCHEMA[db].format(users=users, servers=servers, metrics=metrics)
        pg.psql(f"SET ROLE {APP_ROLE}; {sql}", db=db)


def fingerprint(pg) -> dict[str, tuple]:
    """Per table: row count, an md5 over every row in key order, and the owner."""
    out = {}
    for db, tables in TABLES.items():
        for table in tables:
            row = pg.psql(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')),"
                f" (SELECT tableowner FROM pg_tables WHERE tablename = '{table}')"
                f" FROM {table} t",
                db=db,
            ).stdout.strip()
            out[f"{db}.{table}"] = tuple(row.split("|"))
    return out


def drop_databases(pg) -> None:
    for db in DATABASES:
        pg.psql(f"DROP DATABASE {db} WITH (FORCE)")
