"""Store adapters under one contract: the `store` fixture is the adapter on the plugin's
`backend`; the contract files are marked `both_stores`, so each test runs on SQLite and on
MongoDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gust.ports.store import Store
from tests.support.backends import Backend


@pytest.fixture
async def store(backend: Backend, tmp_path: Path) -> AsyncIterator[Store]:
    adapter = backend.store(tmp_path)
    await adapter.start()
    yield adapter
    await adapter.close()
