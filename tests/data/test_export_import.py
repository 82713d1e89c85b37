"""Export and import through the HTTP API: round trip, ChatGPT files, bad files, isolation."""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from typing import Any

import aiohttp
import pytest

from gust.domain.ids import new_id, now
from gust.domain.models import Chat, Message, User
from gust.services.exports import ExportService
from tests.data.world import search_hits, seed_chats, snapshot
from tests.support.app_server import RunningApp
from tests.support.client import Api

pytestmark = pytest.mark.both_stores  # the app fixture runs on SQLite, then MongoDB


async def me(app: RunningApp, api: Api) -> User:
    user = await app.services.store.get_user((await api.get("/api/auth/me")).json["id"])
    assert user is not None
    return user


async def indexed(app: RunningApp) -> None:
    """One indexer cycle: what the store holds as pending is now searchable."""
    await app.services.indexer.run_once()


async def raw(api: Api, method: str, path: str, **kw: Any) -> tuple[int, str, bytes]:
    headers = {"Authorization": f"Bearer {api.token}", **kw.pop("headers", {})}
    async with api.session.request(method, api.base_url + path, headers=headers, **kw) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def test_export_delete_import_gives_back_the_same_chats_and_hits(app: RunningApp, api: Api) -> None:
    alice = await api.register_and_login("alice@example.com")
    await seed_chats(app.services.store, await me(app, alice))
    await indexed(app)
    before = await snapshot(alice)
    hits_before = {q: await search_hits(alice, q) for q in ("zebras", "quokka", "stripes")}
    assert all(hits_before.values())

    status, content_type, archive = await raw(alice, "GET", "/api/export")
    assert status == 200 and content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["format"] == "gust.export" and manifest["chats"] == 2
    assert len([n for n in names if n.endswith(".json") and n.startswith("chats/")]) == 2
    assert len([n for n in names if n.endswith(".md")]) == 2

    for archived in ("false", "true"):
        for item in (await alice.get(f"/api/chats?archived={archived}")).json["items"]:
            assert (await alice.delete(f"/api/chats/{item['id']}")).status == 204
    await indexed(app)
    assert await snapshot(alice) == [] and await search_hits(alice, "zebras") == []

    resp = await alice.request("POST", "/api/import", data=archive,
                               headers={"Content-Type": "application/zip"})
    assert resp.status == 200, resp.text
    assert sorted((c["title"], c["messages"]) for c in resp.json["imported"]) == [
        ("Quokka notes", 3), ("Zebra facts", 7)]
    assert resp.json["skipped"] == []
    await indexed(app)
    after = await snapshot(alice)
    # Imported usage is kept for display, marked so that usage reports never count it.
    imported_usage = [m["usage"] for doc in after for m in doc["messages"] if m["usage"]]
    assert imported_usage and all(u.pop("imported") is True for u in imported_usage)
    assert after == before
    assert {q: await search_hits(alice, q) for q in hits_before} == hits_before
    # The current branch (the latest leaf) is the same one as before.
    zebra = next(c for c in resp.json["imported"] if c["title"] == "Zebra facts")
    branch = (await alice.get(f"/api/chats/{zebra['chat_id']}")).json["messages"]
    assert [m["content"] for m in branch] == ["Why do zebras have black stripes?",
                                              "Melanin makes them black."]
    assert len(branch[0]["sibling_ids"]) == 2


async def test_one_chat_exports_as_json_and_markdown_and_imports_with_new_ids(
    app: RunningApp, api: Api
) -> None:
    alice = await api.register_and_login("alice@example.com")
    first, _ = await seed_chats(app.services.store, await me(app, alice))
    doc = (await alice.get(f"/api/chats/{first}/export?format=json")).json
    assert doc["format"] == "gust.chat" and len(doc["messages"]) == 7
    assert sum(1 for m in doc["messages"] if m["parent_id"] is None) == 2  # the edit is a second root

    status, content_type, body = await raw(alice, "GET", f"/api/chats/{first}/export?format=md")
    text = body.decode()
    assert status == 200 and content_type.startswith("text/markdown")
    assert text.startswith("# Zebra facts\n")
    for content in ("Stripes deter biting flies.", "Possibly for cooling.", "Melanin makes them black."):
        assert content in text
    assert "(branch 1)" in text and "(branch 2)" in text

    resp = await alice.post("/api/import", doc)  # the per-chat document as the raw body
    assert resp.status == 200, resp.text
    [imported] = resp.json["imported"]
    assert imported["chat_id"] != first and imported["messages"] == 7
    copy = (await alice.get(f"/api/chats/{imported['chat_id']}/export?format=json")).json
    old_ids = {m["id"] for m in doc["messages"]}
    assert not old_ids & {m["id"] for m in copy["messages"]}
    assert [m["content"] for m in copy["messages"]] == [m["content"] for m in doc["messages"]]


def chatgpt_conversations() -> list[dict[str, Any]]:
    """conversations.json as ChatGPT writes it: a hidden system node, a tool node, a
    regenerated answer (two children of one question), a null root."""
    t = 1_700_000_000.0

    def node(node_id: str, parent: str | None, children: list[str], role: str | None = None,
             text: str = "", at: float | None = None, **meta: Any) -> dict[str, Any]:
        message: dict[str, Any] | None = None if role is None else {
            "id": node_id, "author": {"role": role, "name": None, "metadata": {}},
            "create_time": at, "content": {"content_type": "text", "parts": [text]},
            "status": "finished_successfully", "metadata": meta, "recipient": "all",
        }
        return {"id": node_id, "parent": parent, "children": children, "message": message}

    nodes = [
        node("root", None, ["sys"]),
        node("sys", "root", ["hidden"], "system", "You are a zoologist."),
        node("hidden", "sys", ["u1"], "system", "", is_visually_hidden_from_conversation=True),
        node("u1", "hidden", ["a1", "a1b"], "user", "What is a zebra?", t + 1),
        node("a1", "u1", ["u2"], "assistant", "A striped horse.", t + 2, model_slug="gpt-4o"),
        node("a1b", "u1", [], "assistant", "An African equid.", t + 3, model_slug="gpt-4o"),
        node("u2", "a1", ["tool"], "user", "Thanks!", t + 4),
        node("tool", "u2", ["a2"], "tool", "browsing results", t + 5),
        node("a2", "tool", [], "assistant", "You're welcome.", t + 6, model_slug="gpt-4o"),
    ]
    good = {"title": "Zebra chat", "create_time": t, "update_time": t + 6,
            "mapping": {n["id"]: n for n in nodes}, "current_node": "a2"}
    broken = {"title": "Broken chat", "create_time": t, "update_time": t,
              "mapping": {"r": node("r", None, ["missing"])}}
    return [good, broken]


async def test_a_chatgpt_export_imports_with_its_tree_and_order(app: RunningApp, api: Api) -> None:
    alice = await api.register_and_login("alice@example.com")
    form = aiohttp.FormData()
    form.add_field("file", json.dumps(chatgpt_conversations()).encode(), filename="conversations.json",
                   content_type="application/json")
    headers = {"Authorization": f"Bearer {alice.token}"}
    async with api.session.post(api.base_url + "/api/import", data=form, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        report = await resp.json()
    assert report["imported"] == [{"title": "Zebra chat", "chat_id": report["imported"][0]["chat_id"],
                                   "messages": 6}]
    assert report["skipped"] == [{"title": "Broken chat",
                                  "reason": "node 'missing' is named as a child but missing"}]

    doc = (await alice.get(f"/api/chats/{report['imported'][0]['chat_id']}/export")).json
    messages = doc["messages"]
    by_id = {m["id"]: m for m in messages}
    shape = [(m["role"], m["content"], by_id[m["parent_id"]]["content"] if m["parent_id"] else None)
             for m in messages]
    assert shape == [
        ("system", "You are a zoologist.", None),
        ("user", "What is a zebra?", "You are a zoologist."),
        ("assistant", "A striped horse.", "What is a zebra?"),
        ("assistant", "An African equid.", "What is a zebra?"),
        ("user", "Thanks!", "A striped horse."),
        ("assistant", "You're welcome.", "Thanks!"),
    ]
    assert messages[2]["model"] == "gpt-4o" and messages[1]["created_at"] == "2023-11-14T22:13:21.000000Z"
    assert doc["chat"]["title"] == "Zebra chat" and doc["chat"]["created_at"] == "2023-11-14T22:13:20.000000Z"
    view = (await alice.get(f"/api/chats/{report['imported'][0]['chat_id']}")).json
    assert [m["content"] for m in view["messages"]][-1] == "You're welcome."
    await indexed(app)
    assert [h["snippet"] for h in await search_hits(alice, "equid")] == ["An African <mark>equid</mark>."]


async def test_a_corrupt_file_is_refused_and_imports_nothing(app: RunningApp, api: Api) -> None:
    alice = await api.register_and_login("alice@example.com")
    whole = json.dumps(chatgpt_conversations()).encode()
    resp = await alice.request("POST", "/api/import", data=whole[: len(whole) // 2],
                               headers={"Content-Type": "application/json"})
    assert resp.status == 400 and resp.error_code == "invalid_import_file"
    assert "not valid JSON" in resp.json["error"]["message"]
    resp = await alice.post("/api/import", {"conversations": []})
    assert resp.status == 400 and resp.error_code == "unknown_import_format"
    resp = await alice.request("POST", "/api/import", data=b"PK\x03\x04garbage",
                               headers={"Content-Type": "application/zip"})
    assert resp.status == 400 and resp.error_code == "invalid_import_file"
    assert (await alice.get("/api/chats")).json["items"] == []


async def test_a_conversation_with_a_bad_message_is_skipped_whole(app: RunningApp, api: Api) -> None:
    alice = await api.register_and_login("alice@example.com")
    at = "2025-01-01T00:00:00Z"
    bad = {"format": "gust.chat", "version": 1, "chat": {"title": "Half bad", "created_at": at},
           "messages": [{"id": "a", "role": "user", "content": "fine", "created_at": at},
                        {"id": "b", "parent_id": "a", "role": "robot", "content": "no", "created_at": at}]}
    resp = await alice.post("/api/import", [bad])
    assert resp.status == 200
    assert resp.json["imported"] == [] and resp.json["skipped"][0]["title"] == "Half bad"
    assert "messages.1.role" in resp.json["skipped"][0]["reason"]
    assert (await alice.get("/api/chats")).json["items"] == []


async def test_imports_are_size_limited(app: RunningApp, api: Api) -> None:
    alice = await api.register_and_login("alice@example.com")
    app.app.gust_settings.import_max_bytes = 2048
    resp = await alice.request("POST", "/api/import", data=b"[" + b" " * 4096 + b"]",
                               headers={"Content-Type": "application/json"})
    assert resp.status == 413


async def test_no_one_exports_another_users_chat(app: RunningApp, api: Api) -> None:
    alice = await api.register_and_login("alice@example.com")
    bob = await api.register_and_login("bob@example.com")
    first, _ = await seed_chats(app.services.store, await me(app, alice))
    for fmt in ("json", "md"):
        resp = await bob.get(f"/api/chats/{first}/export?format={fmt}")
        assert resp.status == 404 and resp.error_code == "not_found"
    status, _, archive = await raw(bob, "GET", "/api/export")
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert status == 200 and zf.namelist() == ["manifest.json"]


async def test_the_zip_is_built_whole_one_chat_at_a_time_then_sent(app: RunningApp, api: Api) -> None:
    """More chats than one page of the store; the archive is complete before it is sent."""
    alice = await api.register_and_login("alice@example.com")
    user = await me(app, alice)
    store = app.services.store
    for n in range(60):
        at = now() - 1000 + n
        chat = Chat(id=new_id(), user_id=user.id, team_id=user.team_id, title=f"Chat {n}", model=None,
                    created_at=at, updated_at=at)
        await store.create_chat(chat)
        await store.create_message(Message(
            id=new_id(), chat_id=chat.id, user_id=user.id, team_id=user.team_id, role="user",
            content=secrets.token_hex(4000), status="complete", created_at=at, updated_at=at))
    archive, size = await ExportService(app.services.chats).build_zip(user)
    with archive:
        data = archive.read()
    assert len(data) == size
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert len([n for n in zf.namelist() if n.endswith(".json")]) == 61

    headers = {"Authorization": f"Bearer {alice.token}"}
    async with api.session.get(api.base_url + "/api/export", headers=headers) as resp:
        assert resp.status == 200
        body = await resp.read()
        assert resp.headers["Content-Length"] == str(len(body))
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert zf.testzip() is None and len(zf.namelist()) == 121


async def test_a_conversation_too_big_to_store_is_refused_whole(app: RunningApp, api: Api) -> None:
    """A 17 MiB message (over MongoDB's 16 MiB document limit) is refused before any write:
    the conversation is skipped whole, the others are imported, nothing is left behind."""
    alice = await api.register_and_login("alice@example.com")
    at = "2025-01-01T00:00:00Z"
    doc: dict[str, Any] = {
        "format": "gust.chat", "version": 1, "chat": {"title": "Too big", "created_at": at},
        "messages": [{"id": "a", "role": "user", "content": "fine", "created_at": at},
                     {"id": "b", "parent_id": "a", "role": "assistant", "content": "x" * (17 << 20),
                      "created_at": at}],
    }
    ok = {**doc, "chat": {"title": "Small", "created_at": at}, "messages": doc["messages"][:1]}
    resp = await alice.post("/api/import", [doc, ok])
    assert resp.status == 200, resp.text
    [skipped] = resp.json["skipped"]
    assert skipped["title"] == "Too big" and skipped["reason"].startswith("messages.1.content: ")
    assert [c["title"] for c in resp.json["imported"]] == ["Small"]
    assert [c["title"] for c in (await alice.get("/api/chats")).json["items"]] == ["Small"]
    [small] = (await alice.get("/api/chats")).json["items"]
    assert [m["content"] for m in (await alice.get(f"/api/chats/{small['id']}")).json["messages"]] == ["fine"]
