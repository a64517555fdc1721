-- Least privilege after the migrations, in the owner's session (it owns what they created).
-- Idempotent: runs on every bootstrap.
SELECT format('GRANT USAGE ON SCHEMA %I TO %I, %I', nspname, :'app_user', :'reader_user')
  FROM pg_namespace
 WHERE nspname IN ('pganalytics', 'metrics') AND nspowner = current_user::regrole \gexec
-- Per object the owner owns (public also holds extension objects, which are not the app's).
SELECT CASE WHEN c.relkind = 'S'
            THEN format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %s TO %I', c.oid::regclass,
                        :'app_user')
            ELSE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I; GRANT SELECT ON %s TO %I',
                        c.oid::regclass, :'app_user', c.oid::regclass, :'reader_user')
       END
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('pganalytics', 'metrics', 'public')
   AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
   AND c.relowner = current_user::regrole \gexec
SELECT format('GRANT EXECUTE ON ROUTINE %s TO %I', p.oid::regprocedure, :'app_user')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('pganalytics', 'metrics', 'public')
   AND p.proowner = current_user::regrole \gexec
-- What later migrations create (as the owner) gets the same grants.
SELECT format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
              nspname, :'app_user'),
       format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO %I',
              nspname, :'app_user'),
       format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I',
              nspname, :'reader_user')
  FROM pg_namespace
 WHERE nspname IN ('pganalytics', 'metrics', 'public') \gexec
-- The migrations grant pg_monitor SELECT on collected query statistics and EXECUTE on their
-- functions; the collector's monitoring role has pg_monitor and reads no app data.
SELECT format('REVOKE ALL ON %s FROM pg_monitor', c.oid::regclass)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('pganalytics', 'metrics', 'public')
   AND EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 'pg_monitor'::regrole)
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e') \gexec
SELECT format('REVOKE ALL ON ROUTINE %s FROM pg_monitor', p.oid::regprocedure)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('pganalytics', 'metrics', 'public')
   AND EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 'pg_monitor'::regrole)
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e') \gexec
