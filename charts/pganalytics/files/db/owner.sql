-- Hands the app's schema to the owner role (the administrative role's session).
-- A non-superuser admin (managed servers) acts on the owner's objects as a member of it.
\if :admin_is_superuser
\else
SELECT format('GRANT %I TO CURRENT_USER', :'owner_user')
 WHERE NOT pg_has_role(current_user, :'owner_user', 'MEMBER') \gexec
\endif
-- Objects an earlier bootstrap created as the administrative role (before migrations ran as
-- the owner) pass to the owner, so later migrations may alter them; extension members stay.
SELECT format('ALTER SCHEMA %I OWNER TO %I', nspname, :'owner_user')
  FROM pg_namespace
 WHERE nspname IN ('pganalytics', 'metrics') AND nspowner = current_user::regrole \gexec
SELECT format('ALTER %s %s OWNER TO %I',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                             WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
              c.oid::regclass, :'owner_user')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('pganalytics', 'metrics', 'public')
   AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
   AND c.relowner = current_user::regrole
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype IN ('e', 'a', 'i')) \gexec
SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, :'owner_user')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('pganalytics', 'metrics', 'public')
   AND p.proowner = current_user::regrole
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                      AND d.deptype = 'e') \gexec
SELECT format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, :'owner_user')
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname IN ('pganalytics', 'metrics', 'public')
   AND t.typowner = current_user::regrole
   AND (t.typtype IN ('e', 'd')
        OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                      AND d.deptype = 'e') \gexec
-- A pending migration that creates roles (3.3.0's 001_init.sql) needs CREATEROLE for this run.
SELECT EXISTS (
    SELECT 1 FROM unnest(string_to_array(:'role_files', ',')) AS f
     WHERE f <> '' AND f NOT IN (SELECT version FROM pganalytics_bootstrap.schema_migrations)
) AS needs_createrole \gset
\if :needs_createrole
\echo bootstrap: a pending migration creates roles: CREATEROLE for the owner during this run
ALTER ROLE :"owner_user" CREATEROLE;
\endif
