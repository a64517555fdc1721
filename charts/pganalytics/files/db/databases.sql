-- Both databases of pgAnalytics, created when missing (an external server may have them already).
-- One bootstrap at a time creates databases (the lock ends with this session).
SELECT pg_advisory_lock(hashtext('pganalytics-bootstrap-databases')) AS locked \gset
\getenv app_db APP_DB
\getenv metrics_db METRICS_DB
SELECT format('CREATE DATABASE %I', :'app_db')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'app_db') \gexec
SELECT format('CREATE DATABASE %I', :'metrics_db')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'metrics_db') \gexec
