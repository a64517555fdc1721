-- Session start: one bootstrap at a time per server (the lock is released when psql exits),
-- and the table that records which migration files were applied.
\getenv app_db APP_DB
\getenv metrics_db METRICS_DB
\getenv app_user APP_USER
\getenv app_password APP_PASSWORD
\getenv reader_user READER_USER
\getenv reader_password READER_PASSWORD
\getenv admin_password ADMIN_PASSWORD
\getenv owns_server OWNS_SERVER
SELECT :'reader_password' <> '' AS reader_has_password \gset
SELECT pg_advisory_lock(hashtext('pganalytics-bootstrap')) AS locked \gset
CREATE SCHEMA IF NOT EXISTS pganalytics_bootstrap;
CREATE TABLE IF NOT EXISTS pganalytics_bootstrap.schema_migrations (
    version    text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
