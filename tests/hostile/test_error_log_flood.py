"""Floods must not reach the admins' error log: 4xx are not errors, anonymous requests have no
team, and each team keeps its own quota of entries.

Before: 30 anonymous requests of nested JSON added 30 entries to every team admin's log, and
the log kept 1,000 entries shared by all teams, so ~1,000 requests wiped every team's errors.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gust.domain.models import Team
from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.client import Api

KEEP = 10


@pytest.fixture
async def small_log_app(data_dir: Path) -> AsyncIterator[RunningApp]:
    running = await start_app(make_settings(data_dir, error_log_max_entries=KEEP))
    yield running
    await running.stop()


@pytest.fixture
async def teams(small_log_app: RunningApp, http: aiohttp.ClientSession) -> dict[str, Api]:
    """admin_a and member_a in the default team; admin_b and member_b in a second team."""
    app = small_log_app
    clients = {name: await app.sign_up(http, f"{name}@example.com")
               for name in ("admin_a", "member_a", "admin_b", "member_b")}
    await app.services.store.create_team(Team(id="team-b", name="B", created_at=1.0))
    for name, role in (("admin_b", "admin"), ("member_b", "user")):
        user_id = (await clients[name].get("/api/auth/me")).json["id"]
        await app.services.store.update_user(user_id, {"team_id": "team-b", "role": role})
    return clients


async def _log(app: RunningApp, admin: Api) -> list[dict[str, object]]:
    await app.services.error_log.drain()
    resp = await admin.get("/api/admin/errors?limit=1000")
    assert resp.status == 200, resp.text
    items: list[dict[str, object]] = resp.json["items"]
    return items


def _drop(app: RunningApp, table: str) -> None:
    with sqlite3.connect(app.settings.sqlite_path) as conn:
        conn.execute(f"DROP TABLE {table}")  # a real failure of the real store


async def test_anonymous_nested_json_floods_leave_every_log_empty(
    small_log_app: RunningApp, teams: dict[str, Api]
) -> None:
    anonymous = teams["admin_a"].as_user(None)
    for _ in range(30):
        resp = await anonymous.request("POST", "/api/auth/login", data=b"[" * 2000,
                                       headers={"Content-Type": "application/json"})
        assert resp.status == 400, resp.text
    for admin in ("admin_a", "admin_b"):
        assert await _log(small_log_app, teams[admin]) == []


async def test_client_errors_are_not_server_errors(small_log_app: RunningApp, teams: dict[str, Api]) -> None:
    member = teams["member_a"]
    for _ in range(5):
        assert (await member.get("/api/chats/nope")).status == 404
        assert (await member.patch("/api/chats/nope", {"title": ""})).status in (404, 422)
        assert (await member.post("/api/chats", {"nope": 1})).status == 422
        assert (await member.get("/api/admin/errors")).status == 403
        assert (await member.request("POST", "/api/chats", data=b"{", headers={
            "Content-Type": "application/json"})).status == 400
    assert await _log(small_log_app, teams["admin_a"]) == []


async def test_anonymous_server_errors_stay_out_of_every_team_log(
    small_log_app: RunningApp, teams: dict[str, Api]
) -> None:
    _drop(small_log_app, "shares")
    anonymous = teams["admin_a"].as_user(None)
    for i in range(30):
        resp = await anonymous.get(f"/api/shares/share-link-{i:010d}", headers={"X-Request-ID": f"anon-{i}"})
        assert resp.status == 500, resp.text
    for admin in ("admin_a", "admin_b"):
        assert await _log(small_log_app, teams[admin]) == []


async def test_each_team_keeps_its_own_quota(small_log_app: RunningApp, teams: dict[str, Api]) -> None:
    _drop(small_log_app, "chats")
    for i in range(3):
        resp = await teams["member_a"].get("/api/chats", headers={"X-Request-ID": f"a-{i}"})
        assert resp.status == 500
    for i in range(KEEP * 3):  # team B floods its own log
        resp = await teams["member_b"].get("/api/chats", headers={"X-Request-ID": f"b-{i}"})
        assert resp.status == 500

    log_a = await _log(small_log_app, teams["admin_a"])
    assert [e["request_id"] for e in log_a] == ["a-2", "a-1", "a-0"]  # untouched by team B
    log_b = await _log(small_log_app, teams["admin_b"])
    assert [e["request_id"] for e in log_b] == [f"b-{i}" for i in range(KEEP * 3 - 1, KEEP * 2 - 1, -1)]
