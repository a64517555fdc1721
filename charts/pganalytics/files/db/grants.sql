-- Least privilege after the migrations (which create everything as the superuser and grant
-- only to their own pganalytics_app_* roles). Idempotent: runs on every bootstrap.
\if :owns_server
-- The app role must not own (and so be able to drop or alter) its databases.
ALTER DATABASE :"app_db" OWNER TO CURRENT_USER;
ALTER DATABASE :"metrics_db" OWNER TO CURRENT_USER;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
-- Only the roles named below may connect.
REVOKE ALL ON DATABASE :"app_db" FROM PUBLIC;
REVOKE ALL ON DATABASE :"metrics_db" FROM PUBLIC;
\endif
GRANT CONNECT, TEMPORARY ON DATABASE :"app_db" TO :"app_user";
GRANT CONNECT ON DATABASE :"metrics_db" TO :"app_user";
GRANT CONNECT ON DATABASE :"app_db" TO :"reader_user";
GRANT USAGE ON SCHEMA pganalytics_bootstrap TO :"app_user";
GRANT SELECT ON pganalytics_bootstrap.schema_migrations TO :"app_user";
SELECT format('GRANT USAGE ON SCHEMA %I TO %I, %I', nspname, :'app_user', :'reader_user'),
       format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I',
              nspname, :'app_user'),
       format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO %I',
              nspname, :'app_user'),
       format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO %I', nspname, :'app_user'),
       format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', nspname, :'reader_user'),
       format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
              nspname, :'app_user'),
       format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO %I',
              nspname, :'app_user'),
       format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I',
              nspname, :'reader_user')
  FROM pg_namespace
 WHERE nspname IN ('pganalytics', 'metrics', 'public') \gexec
