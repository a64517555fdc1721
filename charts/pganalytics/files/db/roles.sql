-- Roles of pgAnalytics. Passwords come from the credentials Secret and are set on every run,
-- so a rotated Secret reaches PostgreSQL with the next bootstrap.
--   app_user:    the backend (and, on the chart's own server, the collector): no superuser,
--                no CREATEDB/CREATEROLE; owns nothing the migrations create.
--   reader_user: Grafana's datasource, SELECT only.
SELECT format('CREATE ROLE %I LOGIN', :'app_user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'reader_user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'reader_user') \gexec
ALTER ROLE :"app_user" WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
ALTER ROLE :"reader_user" WITH LOGIN NOCREATEDB NOCREATEROLE;
\if :owns_server
-- Only a superuser may set these; an external server's admin role (e.g. on RDS) may not be one.
ALTER ROLE :"app_user" WITH NOSUPERUSER NOREPLICATION NOBYPASSRLS;
ALTER ROLE :"reader_user" WITH NOSUPERUSER NOREPLICATION NOBYPASSRLS;
\endif
\if :reader_has_password
ALTER ROLE :"reader_user" PASSWORD :'reader_password';
\else
-- Without Grafana the role keeps no password, so nobody logs in with it.
ALTER ROLE :"reader_user" PASSWORD NULL;
\endif
-- Grafana's role only reads, even if a grant elsewhere would allow more.
ALTER ROLE :"reader_user" SET default_transaction_read_only = on;
-- The backend names some tables without a schema: those of the pganalytics schema and those
-- the later migrations create in public.
ALTER ROLE :"app_user" IN DATABASE :"app_db" SET search_path = pganalytics, public;
ALTER ROLE :"reader_user" IN DATABASE :"app_db" SET search_path = pganalytics, public;
\if :owns_server
-- The chart's own server: the collector monitors it as the app role.
GRANT pg_monitor TO :"app_user";
\endif
