"""A store that cannot be used right now answers 503 + Retry-After, never 500 (SQLite)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.app_server import RunningApp, make_settings, start_app


@pytest.fixture
async def quick_app(data_dir: Path) -> AsyncIterator[RunningApp]:
    running = await start_app(make_settings(data_dir, sqlite_busy_timeout=0.2))
    yield running
    await running.stop()


async def test_a_database_locked_by_another_process_answers_503_with_retry_after(
    quick_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    api = await quick_app.sign_up(http, "locked@example.com")
    # Another process (here: a connection of the test's own) holds the write lock.
    other = sqlite3.connect(quick_app.settings.sqlite_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        resp = await api.post("/api/chats", {"title": "while locked"})
        assert resp.status == 503, resp.text
        assert resp.error_code == "store_unavailable"
        assert int(resp.headers["Retry-After"]) >= 1
        assert "locked" not in resp.text  # the cause is for the logs, not for clients
        other.execute("ROLLBACK")
    finally:
        other.close()
    resp = await api.post("/api/chats", {"title": "after"})
    assert resp.status == 201, resp.text

