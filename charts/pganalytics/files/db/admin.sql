-- First admin: the migrations seed user `admin` with password `admin`. While it still has
-- that password, it gets the one from the credentials Secret; a password the admin has
-- changed since is left alone. The bootstrap fails if any user still has password `admin`.
UPDATE pganalytics.users
   SET password_hash = crypt(:'admin_password', gen_salt('bf', 10))
 WHERE username = 'admin' AND password_hash = crypt('admin', password_hash);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pganalytics.users WHERE password_hash = crypt('admin', password_hash)) THEN
        RAISE EXCEPTION 'a pgAnalytics user still has the password "admin"';
    END IF;
END
$$;
