"""Export and import run against both stores: the embedded SQLite and MongoDB (FerretDB)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.env import require_env


@pytest.fixture(params=["sqlite", "mongodb"])
async def app(request: pytest.FixtureRequest, data_dir: Path) -> AsyncIterator[RunningApp]:
    overrides: dict[str, Any] = {}
    if request.param == "mongodb":
        overrides = {"mongodb_uri": require_env("TEST_MONGODB_URI", "a MongoDB wire-protocol server"),
                     "mongodb_db_name": f"gust_data_{uuid.uuid4().hex[:12]}"}
    running = await start_app(make_settings(data_dir, **overrides))
    yield running
    if request.param == "mongodb":
        client = running.services.store._client  # type: ignore[attr-defined]
        await client.drop_database(overrides["mongodb_db_name"])
    await running.stop()
