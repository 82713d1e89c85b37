"""Agents: team-scoped, admin-managed, avatars sniffed and re-encoded, webhook tokens
encrypted at rest and never returned (checked on both stores' raw documents)."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from gust.domain.models import Team
from tests.support.app_server import RunningApp
from tests.support.backends import Backend
from tests.support.client import Api

WEBHOOK_TOKEN = "whk-super-secret-token-7f3a9c"
AGENT: dict[str, Any] = {
    "name": "Researcher",
    "description": "Finds sources",
    "model": "deepseek-chat",
    "system_prompt": "You cite sources.",
    "webhook": {"url": "https://n8n.example.com/webhook/abc", "token": WEBHOOK_TOKEN},
}


pytestmark = pytest.mark.both_stores


async def raw_agent_documents(app: RunningApp, backend: Backend) -> str:
    """Everything the store keeps about agents, as stored."""
    if backend.is_mongodb:
        return json.dumps(await backend.documents("agents"), default=str)
    with sqlite3.connect(app.settings.sqlite_path) as conn:
        return json.dumps([row for row in conn.execute("SELECT * FROM agents")])


@pytest.fixture
async def team(api: Api) -> tuple[Api, Api]:
    """An admin (the first account) and a member of the same team."""
    admin = await api.register_and_login("admin@example.com")
    return admin, await api.register_and_login("member@example.com")


async def fetch_image(client: Api, path: str) -> tuple[int, dict[str, str], bytes]:
    async with client.session.get(client.base_url + path,
                                  headers={"Authorization": f"Bearer {client.token}"}) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def image_bytes(fmt: str, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else 1).save(out, format=fmt)
    return out.getvalue()


async def test_webhook_token_is_encrypted_at_rest_and_never_returned(
    app: RunningApp, backend: Backend, team: tuple[Api, Api]
) -> None:
    admin, member = team
    created = await admin.post("/api/agents", AGENT)
    assert created.status == 201, created.text
    agent = created.json
    assert agent["webhook"] == {"url": AGENT["webhook"]["url"], "has_token": True}
    for resp in (created, await admin.get(f"/api/agents/{agent['id']}"), await member.get("/api/agents"),
                 await admin.get("/api/agents")):
        assert resp.status in (200, 201)
        assert WEBHOOK_TOKEN not in resp.text

    raw = await raw_agent_documents(app, backend)
    assert agent["id"] in raw and WEBHOOK_TOKEN not in raw and '"v1:' in raw.replace("\\", "")
    # The server itself can still use it.
    me = await app.services.store.get_user((await admin.get("/api/auth/me")).json["id"])
    assert me is not None
    webhook = await app.services.accounts.agents.webhook(me, agent["id"])
    assert webhook is not None and webhook.token == WEBHOOK_TOKEN


async def test_replacing_an_agent_keeps_the_token_only_for_the_same_url(
    app: RunningApp, backend: Backend, team: tuple[Api, Api]
) -> None:
    admin, _ = team
    agent = (await admin.post("/api/agents", AGENT)).json
    same_url = {**AGENT, "name": "Renamed", "webhook": {"url": AGENT["webhook"]["url"]}}
    kept = await admin.request("PUT", f"/api/agents/{agent['id']}", json_body=same_url)
    assert kept.status == 200 and kept.json["name"] == "Renamed" and kept.json["webhook"]["has_token"] is True
    moved = {**AGENT, "webhook": {"url": "https://elsewhere.example.com/hook"}}
    dropped = await admin.request("PUT", f"/api/agents/{agent['id']}", json_body=moved)
    assert dropped.json["webhook"] == {"url": "https://elsewhere.example.com/hook", "has_token": False}
    none = await admin.request("PUT", f"/api/agents/{agent['id']}", json_body={**AGENT, "webhook": None})
    assert none.json["webhook"] is None
    assert "v1:" not in await raw_agent_documents(app, backend)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "https://user:pw@example.com/x", "not a url", "/relative"]
)
async def test_webhook_url_must_be_http(team: tuple[Api, Api], url: str) -> None:
    admin, _ = team
    resp = await admin.post("/api/agents", {**AGENT, "webhook": {"url": url, "token": "t"}})
    assert (resp.status, resp.error_code) == (422, "validation_error")


async def test_members_read_admins_write(team: tuple[Api, Api]) -> None:
    admin, member = team
    agent = (await admin.post("/api/agents", AGENT)).json
    assert [a["id"] for a in (await member.get("/api/agents")).json["items"]] == [agent["id"]]
    assert (await member.get(f"/api/agents/{agent['id']}")).status == 200
    for resp in (await member.post("/api/agents", AGENT),
                 await member.request("PUT", f"/api/agents/{agent['id']}", json_body=AGENT),
                 await member.delete(f"/api/agents/{agent['id']}"),
                 await member.request("PUT", f"/api/agents/{agent['id']}/avatar", data=image_bytes("PNG"))):
        assert (resp.status, resp.error_code) == (403, "admin_required")
    assert (await admin.delete(f"/api/agents/{agent['id']}")).status == 204
    assert (await member.get(f"/api/agents/{agent['id']}")).status == 404


async def test_other_teams_cannot_see_or_touch_an_agent(
    app: RunningApp, team: tuple[Api, Api], api: Api
) -> None:
    admin, _ = team
    agent = (await admin.post("/api/agents", AGENT)).json
    outsider = await api.register_and_login("y-admin@example.com")
    outsider_id = (await outsider.get("/api/auth/me")).json["id"]
    await app.services.store.create_team(Team(id="team-y", name="Y", created_at=1.0))
    await app.services.store.update_user(outsider_id, {"team_id": "team-y", "role": "admin"})

    assert (await outsider.get("/api/agents")).json["items"] == []
    for resp in (await outsider.get(f"/api/agents/{agent['id']}"),
                 await outsider.request("PUT", f"/api/agents/{agent['id']}", json_body=AGENT),
                 await outsider.delete(f"/api/agents/{agent['id']}"),
                 await outsider.get(f"/api/agents/{agent['id']}/avatar"),
                 await outsider.request("PUT", f"/api/agents/{agent['id']}/avatar", data=image_bytes("PNG"))):
        assert resp.status == 404
    assert (await admin.get(f"/api/agents/{agent['id']}")).json["name"] == "Researcher"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
async def test_avatar_upload_is_reencoded_as_png(team: tuple[Api, Api], fmt: str) -> None:
    admin, member = team
    agent = (await admin.post("/api/agents", AGENT)).json
    assert agent["avatar_url"] is None
    upload = image_bytes(fmt, size=(1200, 800))
    resp = await admin.request("PUT", f"/api/agents/{agent['id']}/avatar", data=upload,
                               headers={"Content-Type": "text/html"})  # the declared type is ignored
    assert resp.status == 200, resp.text
    assert resp.json["avatar_url"].startswith(f"/api/agents/{agent['id']}/avatar")

    status, headers, data = await fetch_image(member, resp.json["avatar_url"])
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert "sandbox" in headers["Content-Security-Policy"]
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG" and max(img.size) == 512


async def test_polyglot_payload_does_not_survive(team: tuple[Api, Api]) -> None:
    admin, member = team
    agent = (await admin.post("/api/agents", AGENT)).json
    payload = b"<script>alert(document.cookie)</script>"
    resp = await admin.request("PUT", f"/api/agents/{agent['id']}/avatar", data=image_bytes("PNG") + payload)
    assert resp.status == 200
    status, _, data = await fetch_image(member, f"/api/agents/{agent['id']}/avatar")
    assert status == 200 and data.startswith(b"\x89PNG") and b"<script>" not in data


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda: b"GIF89a" + b"\x00" * 100, 422),  # not one of the accepted formats
        (lambda: b"<svg xmlns='http://www.w3.org/2000/svg'><script>x</script></svg>", 422),
        (lambda: b"\x89PNG\r\n\x1a\n" + b"garbage" * 50, 422),  # the right magic, no image
        (lambda: image_bytes("PNG", size=(10000, 10000), mode="1"), 422),  # a decompression bomb
        (lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * (1024 * 1024), 413),  # over 1 MiB
    ],
    ids=["gif", "svg", "truncated-png", "bomb", "too-large"],
)
async def test_bad_avatars_are_refused(team: tuple[Api, Api], make: Callable[[], bytes], status: int) -> None:
    admin, _ = team
    data = make()
    agent = (await admin.post("/api/agents", AGENT)).json
    resp = await admin.request("PUT", f"/api/agents/{agent['id']}/avatar", data=data)
    assert resp.status == status, resp.text
    assert (await admin.get(f"/api/agents/{agent['id']}")).json["avatar_url"] is None


async def test_a_chat_binds_to_an_agent_of_its_team_only(
    app: RunningApp, team: tuple[Api, Api], api: Api
) -> None:
    admin, member = team
    agent = (await admin.post("/api/agents", AGENT)).json
    bound = await member.post("/api/chats", {"title": "with agent", "agent_id": agent["id"]})
    assert bound.status == 201 and bound.json["agent_id"] == agent["id"]
    unbound = await member.patch(f"/api/chats/{bound.json['id']}", {"agent_id": None})
    assert unbound.status == 200 and unbound.json["agent_id"] is None
    rebound = await member.patch(f"/api/chats/{bound.json['id']}", {"agent_id": agent["id"]})
    assert rebound.json["agent_id"] == agent["id"]
    assert (await member.post("/api/chats", {"agent_id": "no-such-agent"})).status == 404

    outsider = await api.register_and_login("y@example.com")
    outsider_id = (await outsider.get("/api/auth/me")).json["id"]
    await app.services.store.create_team(Team(id="team-y", name="Y", created_at=1.0))
    await app.services.store.update_user(outsider_id, {"team_id": "team-y"})
    assert (await outsider.post("/api/chats", {"agent_id": agent["id"]})).status == 404
    theirs = (await outsider.post("/api/chats", {"title": "mine"})).json
    assert (await outsider.patch(f"/api/chats/{theirs['id']}", {"agent_id": agent["id"]})).status == 404
