-- Sets :pending to whether :'migration' still has to be applied; warns when a file that was
-- applied earlier has changed since (migrations are never re-run).
SELECT NOT EXISTS (
    SELECT 1 FROM pganalytics_bootstrap.schema_migrations WHERE version = :'migration'
) AS pending,
EXISTS (
    SELECT 1 FROM pganalytics_bootstrap.schema_migrations
     WHERE version = :'migration' AND checksum <> :'checksum'
) AS changed \gset
\if :changed
\echo bootstrap: WARNING :migration changed since it was applied; it is not applied again
\endif
