INSERT INTO pganalytics_bootstrap.schema_migrations (version, checksum)
VALUES (:'migration', :'checksum');
