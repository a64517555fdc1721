"""The throwaway PostgreSQL of tests/support/postgres.py behaves like a real server: roles,
password authentication over TCP, databases."""

import subprocess

import pytest


def test_password_auth_is_enforced_once_required(postgres_server):
    pg = postgres_server
    pg.psql("CREATE ROLE app LOGIN PASSWORD 'right-password'")
    pg.psql("CREATE DATABASE appdb OWNER app")
    pg.require_passwords()
    assert (
        pg.psql(
            "SELECT current_user", user="app", db="appdb", password="right-password"
        ).stdout.strip()
        == "app"
    )
    with pytest.raises(subprocess.CalledProcessError) as err:
        pg.psql("SELECT 1", user="app", db="appdb", password="wrong-password")
    assert "password authentication failed" in err.value.stderr
    # The superuser still comes in through the socket.
    assert pg.psql("SHOW server_version_num").stdout.strip().startswith(str(pg.version))
