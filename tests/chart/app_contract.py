"""The contract between the chart and pgAnalytics 3.3.0, as data (docs/APP_CONTRACT.md).

Read from the upstream source at tag v3.3.0 (backend config, collector entrypoint, frontend
Dockerfile, ml-service app/config) and checked against the real backend once by hand (the
procedure is in docs/APP_CONTRACT.md). CI cannot fetch that source, so the chart tests check
the rendered chart against these names: renaming one on either side fails CI.
"""

from __future__ import annotations

# Environment variables each component reads. The chart may set only these (plus the
# variables it uses for $(VAR) expansion, listed separately).
BACKEND_ENV = frozenset(
    {
        "PORT",
        "DATABASE_URL",
        "TIMESCALE_URL",
        "JWT_SECRET",
        "REGISTRATION_SECRET",
        "API_BASE_URL",
        "FRONTEND_URL",
        "ENVIRONMENT",
        "LOG_LEVEL",
        "ENCRYPTION_KEY",
        "ALLOWED_ORIGINS",
        "ML_SERVICE_URL",
        "ML_SERVICE_ENABLED",
        "JWT_EXPIRATION",
        "TLS_ENABLED",
        "TLS_CERT",
        "TLS_KEY",
    }
)
# Read only by app versions that support them (not 3.3.0); the chart sets them only when the
# matching opt-in value is on.
BACKEND_OPT_IN_ENV = frozenset(
    {
        "LDAP_ENABLED",
        "LDAP_SERVER_URL",
        "LDAP_BIND_DN",
        "LDAP_BIND_PASSWORD",
        "LDAP_USER_SEARCH_BASE",
        "LDAP_GROUP_SEARCH_BASE",
        "LDAP_GROUP_TO_ROLE_MAPPING",
        "SAML_ENABLED",
        "SAML_CERT_PATH",
        "SAML_KEY_PATH",
        "SAML_IDP_METADATA_URL",
        "SAML_ENTITY_ID",
        "OAUTH_ENABLED",
        "OAUTH_PROVIDERS",
        "ENCRYPTION_ENABLED",
        "ENCRYPTION_KEY_BACKEND",
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "VAULT_PATH",
        "AWS_SECRETS_MANAGER_ARN",
        "GCP_KMS_KEY_NAME",
    }
)
# Not read by 3.3.0 (its pools are fixed in the binary): the chart must not pretend.
BACKEND_IGNORED_ENV = frozenset({"MAX_DATABASE_CONNS", "DB_HOST", "DB_PASSWORD", "API_WORKERS"})
# The chart's own variable, expanded into DATABASE_URL / TIMESCALE_URL by Kubernetes.
EXPANSION_ENV = frozenset({"DATABASE_PASSWORD"})

COLLECTOR_ENV = frozenset(
    {
        "BACKEND_URL",
        "REGISTRATION_SECRET",
        "AUTO_REGISTER",
        "COLLECTOR_ID",
        "COLLECTOR_NAME",
        "COLLECTION_INTERVAL",
        "PUSH_INTERVAL",
        "CONFIG_PULL_INTERVAL",
        "BACKEND_TLS_VERIFY",
        "TLS_CERT_FILE",
        "TLS_KEY_FILE",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
        "POSTGRES_DATABASES",
    }
)
# fieldRef helper expanded into COLLECTOR_NAME of node-local collectors.
COLLECTOR_EXPANSION_ENV = frozenset({"NODE_NAME"})

# frontend proxy.js of the 3.3.0 image; it listens on PORT (default 3000).
FRONTEND_ENV = frozenset(
    {"PORT", "VITE_API_BACKEND_HOST", "VITE_API_BACKEND_PORT", "VITE_API_BACKEND_PROTOCOL"}
)
# ml-service: create_app() picks DevelopmentConfig (DEBUG) unless FLASK_ENV=production.
ML_REQUIRED_ENV = {"FLASK_ENV": "production"}

# HTTP endpoints: readiness must see the databases, liveness must not.
BACKEND_READINESS_PATH = "/api/v1/health"  # 503 while a database is down
BACKEND_LIVENESS_PATH = "/version"  # answers without a database

# Where the backend image keeps its migrations (Dockerfile: COPY backend/migrations ./migrations).
MIGRATIONS_DIR = "/app/migrations"

# 3.3.0 opens at most this many connections per API pod (storage: SetMaxOpenConns(50),
# timescale: SetMaxOpenConns(25)), whatever MAX_DATABASE_CONNS says.
BACKEND_CONNECTIONS_PER_POD = 50 + 25
# One collector process, whatever the number of databases: 4 collection threads holding one
# connection each (collector/src/collector.cpp:134) + the query-stats pool, up to 10
# (collector/src/query_stats_plugin.cpp:54). Measured with the real collector: 6 at peak.
COLLECTOR_CONNECTIONS = 4 + 10
# One ML service gunicorn worker: a pool of 2-10 per request, DB_POOL_SIZE ignored
# (ml-service/utils/db_connection.py:20).
ML_CONNECTIONS_PER_WORKER = 10
# What the image's gunicorn runs per pod (ml-service/Dockerfile: --workers 4).
ML_WORKERS_PER_POD = 4
# Where the collector keeps its registration (collector/src/main.cpp:250-251) and how long the
# API's collector tokens live (backend/cmd/pganalytics-api/main.go:114).
COLLECTOR_STATE_DIR = "/var/lib/pganalytics"
COLLECTOR_TOKEN_SECONDS = 30 * 60

# Objects the chart's dashboards read, created by the app's migrations in the metadata
# database (schema -> table -> columns the chart relies on, with their types). Tests build
# exactly these columns in a scratch PostgreSQL and run every dashboard query against them,
# as the read-only role the chart's bootstrap creates.
DASHBOARD_TABLES: dict[str, dict[str, dict[str, str]]] = {
    "pganalytics": {
        "collectors": {
            "id": "uuid",
            "name": "text",
            "hostname": "text",
            "status": "text",
            "last_seen": "timestamptz",
            "metrics_count_total": "bigint",
        },
        "metrics_pg_stats_query": {
            "time": "timestamptz",
            "collector_id": "uuid",
            "database_name": "text",
            "query_hash": "bigint",
            "query_text": "text",
            "calls": "bigint",
            "total_time": "float8",
            "mean_time": "float8",
            "rows": "bigint",
            "shared_blks_hit": "bigint",
            "shared_blks_read": "bigint",
        },
    },
    "public": {
        "metrics_pg_connections_summary": {
            "time": "timestamptz",
            "collector_id": "uuid",
            "database_name": "text",
            "connection_state": "text",
            "connection_count": "integer",
        },
        "metrics_pg_long_running_transactions": {
            "time": "timestamptz",
            "collector_id": "uuid",
            "database_name": "text",
            "pid": "integer",
            "username": "text",
            "session_state": "text",
            "query": "text",
            "duration_seconds": "float8",
        },
        "metrics_pg_locks": {
            "time": "timestamptz",
            "collector_id": "uuid",
            "database_name": "text",
            "mode": "text",
            "granted": "boolean",
        },
        "metrics_pg_lock_waits": {
            "time": "timestamptz",
            "collector_id": "uuid",
            "database_name": "text",
            "blocked_pid": "integer",
            "blocking_pid": "integer",
            "blocked_query": "text",
            "wait_time_seconds": "float8",
        },
        "metrics_pg_cache_tables": {
            "time": "timestamptz",
            "collector_id": "uuid",
            "database_name": "text",
            "schema_name": "text",
            "table_name": "text",
            "heap_blks_hit": "bigint",
            "heap_blks_read": "bigint",
            "heap_cache_hit_ratio": "float8",
            "idx_cache_hit_ratio": "float8",
        },
    },
}
# Tables the backend names without a schema (so the app role's search_path must find them).
UNQUALIFIED_TABLES = ("metrics_pg_stats_query", "metrics_pg_locks", "metrics_pg_cache_tables")
# The seeded first user.
SEEDED_ADMIN = ("admin", "admin")
