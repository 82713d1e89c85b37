"""Store adapters under one contract: the `store` fixture is the adapter on the plugin's
`backend`, and every test here that uses it runs on SQLite and on MongoDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.backends import STORES, Backend, StoreAdapter


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A contract test on `store` runs on each store without saying so (the plugin does the
    same for tests marked `both_stores`)."""
    marked = metafunc.definition.get_closest_marker("both_stores")
    if "store" in metafunc.fixturenames and not marked:
        metafunc.parametrize("backend", STORES, indirect=True)


@pytest.fixture
async def store(backend: Backend, tmp_path: Path) -> AsyncIterator[StoreAdapter]:
    """The adapter itself (typed so): narrower ports are checked against it by mypy."""
    adapter = backend.store(tmp_path)
    await adapter.start()
    yield adapter
    await adapter.close()
