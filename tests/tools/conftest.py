"""Fixtures for the tools tests: the local web site (pages and a SearxNG-style search)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.site_server import SiteServer


@pytest.fixture
async def site() -> AsyncIterator[SiteServer]:
    """The site on 127.0.0.1 and 127.0.0.2 (both loopback), one port."""
    server = await SiteServer(hosts=("127.0.0.1", "127.0.0.2")).start()
    yield server
    await server.stop()
