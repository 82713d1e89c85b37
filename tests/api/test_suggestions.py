"""Suggested prompts: members read their team's list, admins replace it (not with an API
key), bad input is refused; on the SQLite and MongoDB stores."""

from __future__ import annotations

import pytest

from gust.domain.models import Team
from tests.support.app_server import RunningApp
from tests.support.client import Api

pytestmark = pytest.mark.both_stores


async def test_admin_sets_members_read(app: RunningApp, api: Api) -> None:
    admin = await api.register_and_login("admin@example.com")
    member = await api.register_and_login("member@example.com")
    assert (await member.get("/api/settings/suggestions")).json == {"items": []}
    put = await admin.request("PUT", "/api/admin/suggestions",
                              json_body={"items": [" Plan a trip ", "", "Plan a trip", "Write a haiku"]})
    assert put.status == 200, put.text
    assert put.json == {"items": ["Plan a trip", "Write a haiku"]}
    assert (await member.get("/api/settings/suggestions")).json == put.json
    assert (await admin.get("/api/settings/suggestions")).json == put.json

    # Members cannot set them; nor can an admin's API key.
    denied = await member.request("PUT", "/api/admin/suggestions", json_body={"items": ["x"]})
    assert denied.status == 403 and denied.json["error"]["code"] == "admin_required"
    key = await admin.post("/api/auth/api-keys", {"name": "bot"})
    assert key.status == 201, key.text
    by_key = await admin.request("PUT", "/api/admin/suggestions", json_body={"items": ["x"]},
                                 token=key.json["key"])
    assert by_key.status == 403 and by_key.json["error"]["code"] == "api_key_not_allowed"
    assert (await admin.get("/api/settings/suggestions", token=key.json["key"])).status == 200
    assert (await member.get("/api/settings/suggestions")).json["items"] == ["Plan a trip", "Write a haiku"]

    # Wrong types and sizes: 422, nothing changed.
    for body in ({"items": "x"}, {"items": [1]}, {"items": [None]}, {}, {"items": ["x" * 501]},
                 {"items": [f"s{i}" for i in range(13)]}, {"items": ["x"], "extra": 1}):
        resp = await admin.request("PUT", "/api/admin/suggestions", json_body=body)
        assert resp.status == 422, (body, resp.status, resp.text)
    assert (await member.get("/api/settings/suggestions")).json["items"] == ["Plan a trip", "Write a haiku"]
    # Anonymous: 401.
    assert (await api.get("/api/settings/suggestions", auth=False)).status == 401


async def test_teams_do_not_see_each_other(app: RunningApp, api: Api) -> None:
    admin = await api.register_and_login("admin@example.com")
    await admin.request("PUT", "/api/admin/suggestions", json_body={"items": ["Team X only"]})
    await app.services.store.create_team(Team(id="team-y", name="Y", created_at=1.0))
    other = await api.register_and_login("other@example.com")
    me = await other.get("/api/auth/me")
    await app.services.store.update_user(me.json["id"], {"team_id": "team-y", "role": "admin"})
    assert (await other.get("/api/settings/suggestions")).json == {"items": []}
    await other.request("PUT", "/api/admin/suggestions", json_body={"items": ["Team Y"]})
    assert (await admin.get("/api/settings/suggestions")).json == {"items": ["Team X only"]}
