-- Session start (the administrative role): one bootstrap at a time per server (the lock is
-- released when psql exits, after the owner's session it starts has ended), and the table that
-- records which migration files were applied.
\getenv app_db APP_DB
\getenv metrics_db METRICS_DB
\getenv app_user APP_USER
\getenv app_password APP_PASSWORD
\getenv reader_user READER_USER
\getenv reader_password READER_PASSWORD
\getenv monitor_user MONITOR_USER
\getenv monitor_password MONITOR_PASSWORD
\getenv owner_user OWNER_USER
\getenv owner_password OWNER_PASSWORD
\getenv owns_server OWNS_SERVER
\getenv role_files ROLE_MIGRATIONS
SELECT rolsuper AS admin_is_superuser FROM pg_roles WHERE rolname = current_user \gset
\if :admin_is_superuser
-- This session handles role passwords: keep its statements out of the server log whatever
-- log_statement says (the chart's schema refuses the settings that would log them anyway).
SET log_statement = 'none';
SET log_min_duration_statement = -1;
\endif
SELECT :'reader_password' <> '' AS reader_has_password \gset
SELECT pg_advisory_lock(hashtext('pganalytics-bootstrap')) AS locked \gset
CREATE SCHEMA IF NOT EXISTS pganalytics_bootstrap;
CREATE TABLE IF NOT EXISTS pganalytics_bootstrap.schema_migrations (
    version    text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
