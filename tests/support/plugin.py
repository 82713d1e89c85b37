"""The test suite's pytest plugin (registered once, in tests/conftest.py): the shared fixtures.

- `backend`: the store a test runs on. SQLite unless the test is marked `both_stores`, which
  runs it once on SQLite and once on MongoDB (FerretDB, from TEST_MONGODB_URI) in a fresh
  database dropped afterwards.
- `app`: the real application on an ephemeral port, on `backend`'s store; `http` and `api`
  are an HTTP session and an anonymous client of it.
- `upstream`, `start_stream_app`, `stream_app`, `user`: the fake OpenAI upstream and the app
  answering with it.
- `provider`: the local OpenID Connect provider for sign-in tests.
- `browser`: headless Chromium (Playwright, TEST_CHROMIUM); `cookie_http`: an aiohttp session
  that keeps every cookie the way a browser does, for tests that speak HTTP themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, async_playwright

from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.backends import MONGODB_WHAT, STORES, Backend
from tests.support.client import Api
from tests.support.env import require_env
from tests.support.fake_upstream import FakeUpstream
from tests.support.oidc_provider import OIDCProvider
from tests.support.openapi_check import OpenAPIChecker

StartApp = Callable[..., Awaitable[RunningApp]]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_stores: run once on SQLite and once on MongoDB (the `backend` fixture)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_stores"):
        metafunc.parametrize("backend", STORES, indirect=True)


@pytest.fixture
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """SQLite, or (parametrized by `both_stores`) each store in turn. The MongoDB run skips
    when TEST_MONGODB_URI is unset outside CI, and fails in CI."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield Backend.sqlite()
        return
    chosen = Backend.mongodb(require_env("TEST_MONGODB_URI", MONGODB_WHAT))
    yield chosen
    await chosen.drop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
async def app(data_dir: Path, backend: Backend) -> AsyncIterator[RunningApp]:
    running = await start_app(make_settings(data_dir, **backend.settings()))
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


@pytest.fixture
async def cookie_http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session that keeps cookies like a browser (also for 127.0.0.1 hosts)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless (never `playwright install`)."""
    executable = require_env("TEST_CHROMIUM", "a Chromium binary for browser tests")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def provider() -> AsyncIterator[OIDCProvider]:
    """A local OpenID Connect provider (also GitHub- and Apple-shaped), for sign-in tests."""
    running = await OIDCProvider().start()
    yield running
    await running.stop()


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
        started = await start_app(make_settings(data_dir, **values))
        running.append(started)
        return started

    yield start
    for started in running:
        await started.stop()


@pytest.fixture
async def stream_app(start_stream_app: StartApp) -> RunningApp:
    return await start_stream_app()


@pytest.fixture
async def user(stream_app: RunningApp, http: aiohttp.ClientSession) -> Api:
    """A signed-in client of the streaming app."""
    return await stream_app.sign_up(http, "streamer@example.com")
