"""Chat tags and the prompt library over HTTP, with bad input and other users' objects."""

from __future__ import annotations

import aiohttp

from gust.domain.ids import new_id
from tests.support.app_server import RunningApp
from tests.support.client import Api


# -- tags ---------------------------------------------------------------------------------
async def test_tags_are_cleaned_and_filter_the_list(api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")
    a = (await ann.post("/api/chats", {"title": "A"})).json
    b = (await ann.post("/api/chats", {"title": "B"})).json
    assert a["tags"] == []
    patched = await ann.patch(f"/api/chats/{a['id']}", {"tags": ["  Work ", "work", "Big  Ideas", "WORK"]})
    assert patched.status == 200, patched.text
    assert patched.json["tags"] == ["work", "big ideas"]
    await ann.patch(f"/api/chats/{b['id']}", {"tags": ["ideas"]})
    only = await ann.get("/api/chats?tag=work")
    assert [c["id"] for c in only.json["items"]] == [a["id"]]
    assert [c["id"] for c in (await ann.get("/api/chats?tag=WORK")).json["items"]] == [a["id"]]
    assert (await ann.get("/api/chats?tag=nothing")).json["items"] == []
    assert len((await ann.get("/api/chats")).json["items"]) == 2
    cleared = await ann.patch(f"/api/chats/{a['id']}", {"tags": []})
    assert cleared.json["tags"] == []
    assert (await ann.get("/api/chats?tag=work")).json["items"] == []


async def test_tags_bad_input(api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")
    chat = (await ann.post("/api/chats", {})).json
    path = f"/api/chats/{chat['id']}"
    bad = [
        {"tags": "work"},
        {"tags": [1, 2]},
        {"tags": [""]},
        {"tags": ["   "]},
        {"tags": ["x" * 33]},
        {"tags": [f"t{i}" for i in range(21)]},
    ]
    for body in bad:
        resp = await ann.patch(path, body)
        assert resp.status == 422, (body, resp.text)
    # 21 spellings of 20 tags are 20 tags.
    ok = await ann.patch(path, {"tags": [f"t{i}" for i in range(20)] + ["T0"]})
    assert ok.status == 200 and len(ok.json["tags"]) == 20
    assert (await ann.get("/api/chats?tag=" + "x" * 33)).status == 422
    bob = await api.register_and_login("bob@example.com")
    assert (await bob.patch(path, {"tags": ["mine"]})).status == 404
    assert (await bob.get("/api/chats?tag=t1")).json["items"] == []
    assert (await ann.patch(f"/api/chats/{new_id()}", {"tags": ["a"]})).status == 404


# -- prompts ------------------------------------------------------------------------------
async def test_prompt_crud_versions_and_variables(api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")  # the first account: admin
    created = await ann.post(
        "/api/prompts",
        {"name": "Summarise", "command": "/Summarise", "body": "Sum up {{text}} in {{n}} words"},
    )
    assert created.status == 201, created.text
    p = created.json
    assert p["command"] == "summarise" and p["version"] == 1 and p["team_id"] is None
    assert p["variables"] == ["text", "n"]
    assert (await ann.get(f"/api/prompts/{p['id']}")).json == p

    changed = await ann.patch(f"/api/prompts/{p['id']}", {"body": "Summarise {{text}}"})
    assert changed.status == 200 and changed.json["version"] == 2
    assert changed.json["variables"] == ["text"] and changed.json["command"] == "summarise"
    versions = await ann.get(f"/api/prompts/{p['id']}/versions")
    assert [v["version"] for v in versions.json["items"]] == [2, 1]
    assert versions.json["items"][1]["body"] == "Sum up {{text}} in {{n}} words"

    listed = await ann.get("/api/prompts")
    assert [x["id"] for x in listed.json["items"]] == [p["id"]]
    assert (await ann.post("/api/prompts", {"name": "x", "command": "summarise", "body": "b"})).status == 409
    assert (await ann.delete(f"/api/prompts/{p['id']}")).status == 204
    assert (await ann.get(f"/api/prompts/{p['id']}")).status == 404
    assert (await ann.get(f"/api/prompts/{p['id']}/versions")).status == 404


async def test_team_prompts_are_shared_and_only_admins_write_them(
    app: RunningApp, api: Api, http: aiohttp.ClientSession
) -> None:
    admin = await api.register_and_login("admin@example.com")
    invite = await admin.post("/api/admin/invites", {})
    assert invite.status == 201, invite.text
    token = invite.json["token"]
    mia_account = {"email": "mia@example.com", "password": "correct horse 1"}
    reg = await api.post("/api/auth/register", {**mia_account, "invite": token}, auth=False)
    assert reg.status == 201, reg.text
    login = await api.post("/api/auth/login", {"email": "mia@example.com", "password": "correct horse 1"},
                           auth=False)
    mia = api.as_user(login.json["access_token"])

    review = {"name": "Review", "command": "review", "body": "b", "team": True}
    team = await admin.post("/api/prompts", review)
    assert team.status == 201 and team.json["team_id"]
    mine = await mia.post("/api/prompts", {"name": "Mine", "command": "mine", "body": "b"})
    assert mine.status == 201
    assert [x["command"] for x in (await mia.get("/api/prompts")).json["items"]] == ["mine", "review"]
    assert [x["command"] for x in (await admin.get("/api/prompts")).json["items"]] == ["review"]
    # Members read team prompts but do not change them; others' personal prompts are not theirs.
    assert (await mia.get(f"/api/prompts/{team.json['id']}")).status == 200
    assert (await mia.patch(f"/api/prompts/{team.json['id']}", {"body": "x"})).status == 403
    assert (await mia.delete(f"/api/prompts/{team.json['id']}")).status == 403
    refused = await mia.post("/api/prompts", {"name": "T", "command": "t", "body": "b", "team": True})
    assert refused.status == 403
    assert (await admin.get(f"/api/prompts/{mine.json['id']}")).status == 404
    assert (await admin.patch(f"/api/prompts/{mine.json['id']}", {"body": "x"})).status == 404
    assert (await admin.delete(f"/api/prompts/{mine.json['id']}")).status == 404
    # A personal command may repeat a team one (another scope).
    assert (await mia.post("/api/prompts", {"name": "R", "command": "review", "body": "b"})).status == 201


async def test_prompt_bad_input(api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")
    bad = [
        {"name": "x", "command": "has space", "body": "b"},
        {"name": "x", "command": "", "body": "b"},
        {"name": "x", "command": "-dash", "body": "b"},
        {"name": "x", "command": "ok", "body": "   "},
        {"name": "", "command": "ok", "body": "b"},
        {"name": "x", "command": 5, "body": "b"},
        {"name": "x", "command": "ok"},
        {"name": "x", "command": "ok", "body": "b", "team": "yes"},
        {"name": "x", "command": "ok", "body": "b", "extra": 1},
    ]
    for body in bad:
        resp = await ann.post("/api/prompts", body)
        assert resp.status == 422, (body, resp.text)
    p = (await ann.post("/api/prompts", {"name": "x", "command": "ok", "body": "b"})).json
    assert (await ann.patch(f"/api/prompts/{p['id']}", {})).status == 422
    assert (await ann.patch(f"/api/prompts/{p['id']}", {"command": "Not ok!"})).status == 422
    assert (await ann.patch(f"/api/prompts/{p['id']}", {"body": 3})).status == 422
    assert (await ann.get(f"/api/prompts/{new_id()}")).status == 404
    assert (await ann.patch(f"/api/prompts/{new_id()}", {"body": "x"})).status == 404
    assert (await ann.delete(f"/api/prompts/{new_id()}")).status == 404
