"""Fixtures shared by every test tier."""

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
