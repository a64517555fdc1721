-- Database-level privileges (the administrative role), before the owner's session connects.
\if :owns_server
-- No application role owns (and so may drop or alter) its databases.
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
GRANT CONNECT ON DATABASE :"app_db", :"metrics_db" TO :"monitor_user";
-- The owner creates the app's schemas (CREATE) and tables in public, where migrations 011-016
-- put them; it records each migration it applies.
GRANT CONNECT, CREATE, TEMPORARY ON DATABASE :"app_db" TO :"owner_user";
GRANT USAGE, CREATE ON SCHEMA public TO :"owner_user";
GRANT USAGE ON SCHEMA pganalytics_bootstrap TO :"owner_user", :"app_user";
GRANT SELECT, INSERT ON pganalytics_bootstrap.schema_migrations TO :"owner_user";
GRANT SELECT ON pganalytics_bootstrap.schema_migrations TO :"app_user";
