-- The owner's session: the app's migrations, the grants on what they created, the first admin.
-- It runs while the administrative session that started it holds the bootstrap lock.
\getenv app_user APP_USER
\getenv reader_user READER_USER
\getenv admin_password ADMIN_PASSWORD
