"""Store adapters under one contract: the `store` fixture is the adapter on the plugin's
`backend`; the contract files are marked `both_stores`, so each test runs on SQLite and on
MongoDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.backends import Backend, StoreAdapter


@pytest.fixture
async def store(backend: Backend, tmp_path: Path) -> AsyncIterator[StoreAdapter]:
    """The adapter itself (typed so): narrower ports are checked against it by mypy."""
    adapter = backend.store(tmp_path)
    await adapter.start()
    yield adapter
    await adapter.close()
