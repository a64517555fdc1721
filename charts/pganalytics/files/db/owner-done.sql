-- After the owner's session (the administrative role): the owner can no longer log in.
ALTER ROLE :"owner_user" WITH NOLOGIN NOCREATEROLE PASSWORD NULL;
