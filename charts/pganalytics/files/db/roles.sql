-- Roles of pgAnalytics. Passwords come from the credentials Secret and are set on every run,
-- so a rotated Secret reaches PostgreSQL with the next bootstrap.
--   owner_user:   owns the app's schema and runs its migrations, in a session of its own; it
--                 may log in only while a bootstrap runs (a password made for that run).
--   app_user:     the backend: reads and writes rows, owns nothing, no DDL.
--   reader_user:  Grafana's datasource, SELECT only.
--   monitor_user: the collector of the chart's database: pg_monitor, read-only, no table.
SELECT format('CREATE ROLE %I', r)
  FROM unnest(ARRAY[:'owner_user', :'app_user', :'reader_user', :'monitor_user']) AS r
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec
ALTER ROLE :"owner_user" WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
ALTER ROLE :"app_user" WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
ALTER ROLE :"reader_user" WITH LOGIN NOCREATEDB NOCREATEROLE;
ALTER ROLE :"monitor_user" WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD :'monitor_password';
\if :admin_is_superuser
-- Only a superuser may set these; an external server's admin role (e.g. on RDS) may not be one.
SELECT format('ALTER ROLE %I WITH NOSUPERUSER NOREPLICATION NOBYPASSRLS', r)
  FROM unnest(ARRAY[:'owner_user', :'app_user', :'reader_user', :'monitor_user']) AS r \gexec
\endif
\if :reader_has_password
ALTER ROLE :"reader_user" PASSWORD :'reader_password';
\else
-- Without Grafana the role keeps no password, so nobody logs in with it.
ALTER ROLE :"reader_user" PASSWORD NULL;
\endif
-- Grafana's role and the collector's only read, even if a grant elsewhere would allow more.
ALTER ROLE :"reader_user" SET default_transaction_read_only = on;
ALTER ROLE :"monitor_user" SET default_transaction_read_only = on;
-- The backend names some tables without a schema: those of the pganalytics schema and those
-- the later migrations create in public.
ALTER ROLE :"app_user" IN DATABASE :"app_db" SET search_path = pganalytics, public;
ALTER ROLE :"reader_user" IN DATABASE :"app_db" SET search_path = pganalytics, public;
ALTER ROLE :"owner_user" IN DATABASE :"app_db" SET search_path = pganalytics, public;
-- The collector reads the server's statistics (pg_stat_*, pg_stat_statements, pg_ls_waldir):
-- pg_monitor and nothing else. An admin role that may not grant it (some managed servers)
-- gets a warning instead; grant it there yourself.
SELECT set_config('pganalytics.monitor_user', :'monitor_user', false) AS monitor \gset
DO $$
BEGIN
    EXECUTE format('GRANT pg_monitor TO %I', current_setting('pganalytics.monitor_user'));
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'bootstrap: cannot grant pg_monitor to %: grant it as a role that may',
        current_setting('pganalytics.monitor_user');
END
$$;
\if :owns_server
-- Before this chart version the collector monitored the chart's own server as the app role.
REVOKE pg_monitor FROM :"app_user";
\endif
