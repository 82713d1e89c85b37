"""Shared fixtures: the real app on an ephemeral port and an HTTP client for it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))
sys.path.insert(0, str(ROOT))

from tests.support.app_server import RunningApp, make_settings, start_app  # noqa: E402
from tests.support.client import Api  # noqa: E402
from tests.support.openapi_check import OpenAPIChecker  # noqa: E402


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
async def app(data_dir: Path) -> AsyncIterator[RunningApp]:
    running = await start_app(make_settings(data_dir))
    yield running
    await running.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def api(app: RunningApp, http: aiohttp.ClientSession) -> Api:
    """An anonymous client of the running app that checks responses against OpenAPI."""
    return Api(app.url, http, OpenAPIChecker(app.app.openapi))
