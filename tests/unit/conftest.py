"""Fixtures shared by the unit tier."""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture
def loop():
    """One event loop for creating Outputs (in a transform) and awaiting them."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()
