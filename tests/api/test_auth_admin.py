"""Teams and roles: registration modes, one-time invites, admins listing and changing
members, the last-admin rule, team isolation, and the admins' error log."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gust.domain.accounts import Invite
from gust.domain.ids import new_id
from gust.domain.models import Team
from gust.services.tokens import token_hash
from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.backends import adapter
from tests.support.client import Api
from tests.support.openapi_check import OpenAPIChecker

PASSWORD = "correct horse 1"


async def app_with(data_dir: Path, **overrides: Any) -> RunningApp:
    return await start_app(make_settings(data_dir, **overrides))


@pytest.fixture
async def default_mode(data_dir: Path) -> AsyncIterator[RunningApp]:
    """REGISTRATION unset: open until the first account exists, then invite only."""
    running = await app_with(data_dir, registration=None)
    yield running
    await running.stop()


def client(app: RunningApp, http: aiohttp.ClientSession) -> Api:
    return Api(app.url, http, OpenAPIChecker(app.app.openapi))


async def register(api: Api, email: str, invite: str | None = None) -> Any:
    body = {"email": email, "password": PASSWORD, **({"invite": invite} if invite else {})}
    return await api.post("/api/auth/register", body)


async def login(api: Api, email: str) -> Api:
    resp = await api.post("/api/auth/login", {"email": email, "password": PASSWORD})
    assert resp.status == 200, resp.text
    return api.as_user(resp.json["access_token"])


async def test_default_mode_is_open_until_the_first_account_then_invite(
    default_mode: RunningApp, http: aiohttp.ClientSession
) -> None:
    api = client(default_mode, http)
    assert (await api.get("/api/auth/providers")).json["registration"] == "open"
    first = await register(api, "admin@example.com")
    assert first.status == 201 and first.json["role"] == "admin"
    assert (await api.get("/api/auth/providers")).json["registration"] == "invite"
    refused = await register(api, "b@example.com")
    assert (refused.status, refused.error_code) == (403, "invite_required")

    admin = await login(api, "admin@example.com")
    invite = await admin.post("/api/admin/invites", {"role": "user", "email": "B@example.com"})
    assert invite.status == 201, invite.text
    assert invite.json["url"].endswith(f"/?invite={invite.json['token']}")
    assert invite.json["email"] == "b@example.com" and invite.json["used_at"] is None

    wrong_person = await register(api, "c@example.com", invite.json["token"])
    assert (wrong_person.status, wrong_person.error_code) == (403, "invalid_invite")
    joined = await register(api, "b@example.com", invite.json["token"])
    assert joined.status == 201 and joined.json["team_id"] == first.json["team_id"]
    assert joined.json["role"] == "user"
    again = await register(api, "b2@example.com", invite.json["token"])
    assert (again.status, again.error_code) == (403, "invalid_invite")  # one-time

    listed = await admin.get("/api/admin/invites")
    assert [(i["id"], i["used_at"] is not None) for i in listed.json["items"]] == [(invite.json["id"], True)]
    assert "token" not in listed.text


async def test_invite_as_admin_withdrawn_and_expired_invites(
    default_mode: RunningApp, http: aiohttp.ClientSession
) -> None:
    api = client(default_mode, http)
    await register(api, "admin@example.com")
    admin = await login(api, "admin@example.com")
    as_admin = await admin.post("/api/admin/invites", {"role": "admin"})
    joined = await register(api, "second@example.com", as_admin.json["token"])
    assert joined.json["role"] == "admin"

    withdrawn = await admin.post("/api/admin/invites", {})
    assert (await admin.delete(f"/api/admin/invites/{withdrawn.json['id']}")).status == 204
    assert (await admin.delete(f"/api/admin/invites/{withdrawn.json['id']}")).status == 404
    gone = await register(api, "c@example.com", withdrawn.json["token"])
    assert (gone.status, gone.error_code) == (403, "invalid_invite")

    store = adapter(default_mode.services.store)
    await store.create_invite(Invite(id=new_id(), team_id=joined.json["team_id"],
                                     token_hash=token_hash("old"), role="user", created_by="x",
                                     created_at=1.0, expires_at=2.0))
    expired = await register(api, "d@example.com", "old")
    assert (expired.status, expired.error_code) == (403, "invalid_invite")


async def test_closed_registration(data_dir: Path, http: aiohttp.ClientSession) -> None:
    app = await app_with(data_dir, registration="closed")
    try:
        api = client(app, http)
        assert (await register(api, "admin@example.com")).status == 201  # bootstrap only
        admin = await login(api, "admin@example.com")
        invite = await admin.post("/api/admin/invites", {})
        for token in (None, invite.json["token"]):
            refused = await register(api, "b@example.com", token)
            assert (refused.status, refused.error_code) == (403, "registration_closed")
        assert (await api.get("/api/auth/providers")).json["registration"] == "closed"
    finally:
        await app.stop()


async def test_admin_lists_and_changes_members(api: Api) -> None:
    admin = await api.register_and_login("admin@example.com")
    bob = await api.register_and_login("bob@example.com")
    bob_id = (await bob.get("/api/auth/me")).json["id"]

    listed = await admin.get("/api/admin/users")
    assert [u["email"] for u in listed.json["items"]] == ["admin@example.com", "bob@example.com"]
    assert "password" not in listed.text
    for call in (bob.get("/api/admin/users"), bob.patch(f"/api/admin/users/{bob_id}", {"role": "admin"}),
                 bob.get("/api/admin/invites"), bob.post("/api/admin/invites", {}),
                 bob.get("/api/admin/errors")):
        resp = await call
        assert (resp.status, resp.error_code) == (403, "admin_required")

    promoted = await admin.patch(f"/api/admin/users/{bob_id}", {"role": "admin"})
    assert promoted.status == 200 and promoted.json["role"] == "admin"
    assert (await bob.get("/api/admin/users")).status == 200  # the same token: roles apply at once
    demoted = await bob.patch(f"/api/admin/users/{bob_id}", {"role": "user"})
    assert demoted.json["role"] == "user"
    assert (await bob.get("/api/admin/users")).status == 403
    assert (await admin.patch("/api/admin/users/no-such-user", {"disabled": True})).status == 404


async def test_a_team_keeps_one_enabled_admin(api: Api) -> None:
    admin = await api.register_and_login("admin@example.com")
    me = (await admin.get("/api/auth/me")).json["id"]
    for change in ({"role": "user"}, {"disabled": True}):
        resp = await admin.patch(f"/api/admin/users/{me}", change)
        assert (resp.status, resp.error_code) == (409, "last_admin")
    assert (await admin.get("/api/admin/users")).status == 200


async def test_admins_manage_only_their_own_team(app: RunningApp, api: Api) -> None:
    admin = await api.register_and_login("admin@example.com")
    other_admin = await api.register_and_login("other@example.com")
    store = app.services.store
    other_id = (await other_admin.get("/api/auth/me")).json["id"]
    await store.create_team(Team(id="team-y", name="Y", created_at=1.0))
    await store.update_user(other_id, {"team_id": "team-y", "role": "admin"})
    admin_id = (await admin.get("/api/auth/me")).json["id"]

    theirs = await other_admin.get("/api/admin/users")
    assert [u["email"] for u in theirs.json["items"]] == ["other@example.com"]
    for resp in (await other_admin.patch(f"/api/admin/users/{admin_id}", {"disabled": True}),
                 await admin.patch(f"/api/admin/users/{other_id}", {"role": "user"})):
        assert resp.status == 404
    invite = await admin.post("/api/admin/invites", {})
    assert (await other_admin.delete(f"/api/admin/invites/{invite.json['id']}")).status == 404


async def test_server_errors_reach_the_admins_error_log(data_dir: Path, http: aiohttp.ClientSession) -> None:
    app = await app_with(data_dir, error_log_max_entries=10)
    try:
        api = client(app, http)
        admin = await api.register_and_login("admin@example.com")
        bob = await api.register_and_login("bob@example.com")
        bob_id = (await bob.get("/api/auth/me")).json["id"]
        await bob.post("/api/chats", {"title": "secret plans"})
        with sqlite3.connect(app.settings.sqlite_path) as conn:
            conn.execute("DROP TABLE chats")  # a real failure of the real store
        failed = await bob.get("/api/chats?limit=5", headers={"X-Request-ID": "trace-me-500"})
        assert failed.status == 500
        await app.services.error_log.drain()

        log = await admin.get("/api/admin/errors")
        assert log.status == 200, log.text
        [entry] = log.json["items"]
        assert entry["request_id"] == "trace-me-500"
        assert (entry["route"], entry["method"], entry["status"]) == ("/api/chats", "GET", 500)
        assert (entry["user_id"], entry["severity"]) == (bob_id, "error")
        assert entry["error_type"] == "OperationalError"
        assert entry["time"].endswith("Z")
        for leak in ("no such table", "secret plans", "limit=5", "Traceback"):
            assert leak not in log.text

        for i in range(12):  # bounded: the oldest entries go
            assert (await bob.get("/api/chats", headers={"X-Request-ID": f"r{i}"})).status == 500
        await app.services.error_log.drain()
        ids = [e["request_id"] for e in (await admin.get("/api/admin/errors?limit=50")).json["items"]]
        assert ids == [f"r{i}" for i in range(11, 1, -1)]
    finally:
        await app.stop()
