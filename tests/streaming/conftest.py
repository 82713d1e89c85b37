"""Fixtures for streaming tests: a fake OpenAI upstream and the app configured to use it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream

StartApp = Callable[..., Awaitable[RunningApp]]


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    fake = await FakeUpstream().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def start_stream_app(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[StartApp]:
    """Start the app (any settings overridable) with the fake upstream as its only model."""
    running: list[RunningApp] = []

    async def start(**overrides: Any) -> RunningApp:
        values: dict[str, Any] = {
            "models_file": upstream.models_file(tmp_path),
            "checkpoint_interval": 0.05,
            "upstream_first_token_timeout": 5.0,
            "upstream_idle_timeout": 5.0,
            "registration": "open",  # several users per test
        }
        values.update(overrides)
        data_dir = values.pop("data_dir", tmp_path / f"data{len(running)}")
        app = await start_app(make_settings(data_dir, **values))
        running.append(app)
        return app

    yield start
    for app in running:
        await app.stop()


@pytest.fixture
async def stream_app(start_stream_app: StartApp) -> RunningApp:
    return await start_stream_app()


@pytest.fixture
async def user(stream_app: RunningApp, http: aiohttp.ClientSession) -> Api:
    """A signed-in client of the streaming app."""
    return await stream_app.sign_up(http, "streamer@example.com")
