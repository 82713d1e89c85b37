"""Store adapters under one contract: every test here runs on SQLite and on MongoDB."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gust.adapters.store.mongo import MongoStore
from gust.adapters.store.sqlite import SQLiteStore
from gust.ports.store import Store
from tests.support.env import require_env


@pytest.fixture(params=["sqlite", "mongodb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        sqlite = SQLiteStore(tmp_path / "store.db")
        await sqlite.start()
        yield sqlite
        await sqlite.close()
        return
    uri = require_env("TEST_MONGODB_URI", "a MongoDB wire-protocol server (FerretDB)")
    db_name = f"gust_test_{uuid.uuid4().hex[:12]}"  # a fresh database per test
    mongo = MongoStore(uri, db_name)
    await mongo.start()
    yield mongo
    client = mongo._client
    if client is not None:
        await client.drop_database(db_name)
    await mongo.close()
