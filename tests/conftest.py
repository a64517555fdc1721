"""Fixtures shared by every test tier."""

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def require_tool(name: str) -> str:
    """Path of a binary the tests need; fails (never skips) with the command that installs it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"'{name}' is not on PATH. Run 'make setup' (scripts/bootstrap.sh).")
    return path


def credential_keys() -> frozenset[str]:
    """Keys of the program's credentials Secret, read from docs/CHART_INTERFACE.md.

    The contract document is the one source: the chart, unit and cluster tiers all check
    against it, so a key renamed on one side only fails there.
    """
    text = (ROOT / "docs" / "CHART_INTERFACE.md").read_text()
    table = text.split("| key | content |", 1)[1].split("\n\n", 1)[0]
    return frozenset(re.findall(r"^\| `([a-z-]+)` \|", table, flags=re.M))


@pytest.fixture
def postgres_server():
    """A fresh throwaway PostgreSQL on 127.0.0.1 (tests/support/postgres.py); fails, never
    skips, when the server is not installed."""
    from tests.support.postgres import PostgresNotInstalled, PostgresServer

    try:
        server = PostgresServer()
    except PostgresNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)
    with server as pg:
        yield pg
