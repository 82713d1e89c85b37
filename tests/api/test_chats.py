"""Chats API over HTTP: CRUD, pagination, owner-only access, branches of the message tree."""

from __future__ import annotations

from typing import Any

from gust.domain.ids import new_id
from gust.domain.models import Message, Role
from tests.support.app_server import RunningApp
from tests.support.client import Api


async def test_create_two_chats_and_list_newest_first_with_cursor(api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")
    first = await ann.post("/api/chats", {"title": "First", "model": "m1", "system_prompt": "Be brief."})
    assert first.status == 201, first.text
    assert first.json["title"] == "First"
    assert first.json["model"] == "m1"
    assert first.json["system_prompt"] == "Be brief."
    assert first.json["pinned"] is False and first.json["archived"] is False
    second = await ann.post("/api/chats", {})
    assert second.status == 201
    assert second.json["title"] == "New chat"

    listed = await ann.get("/api/chats")
    assert listed.status == 200
    assert [c["id"] for c in listed.json["items"]] == [second.json["id"], first.json["id"]]
    assert listed.json["next_cursor"] is None

    page1 = await ann.get("/api/chats?limit=1")
    assert [c["id"] for c in page1.json["items"]] == [second.json["id"]]
    assert page1.json["next_cursor"]
    page2 = await ann.get(f"/api/chats?limit=1&cursor={page1.json['next_cursor']}")
    assert [c["id"] for c in page2.json["items"]] == [first.json["id"]]
    assert page2.json["next_cursor"] is None


async def test_pagination_walks_every_chat_once(api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")
    created = [(await ann.post("/api/chats", {"title": f"chat {i}"})).json["id"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        path = "/api/chats?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = await ann.get(path)
        assert page.status == 200
        seen += [c["id"] for c in page.json["items"]]
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


async def test_get_patch_delete(api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")
    chat = (await ann.post("/api/chats", {"title": "Old"})).json
    other = (await ann.post("/api/chats", {"title": "Other"})).json

    got = await ann.get(f"/api/chats/{chat['id']}")
    assert got.status == 200
    assert got.json["id"] == chat["id"]
    assert got.json["title"] == "Old"
    assert got.json["messages"] == []

    patched = await ann.patch(f"/api/chats/{chat['id']}", {"title": "  New   title ", "pinned": True})
    assert patched.status == 200, patched.text
    assert patched.json["title"] == "New title"
    assert patched.json["pinned"] is True
    assert patched.json["updated_at"] >= chat["updated_at"]
    # A changed chat moves to the top of the list.
    listed = await ann.get("/api/chats")
    assert [c["id"] for c in listed.json["items"]] == [chat["id"], other["id"]]
    assert (await ann.get(f"/api/chats/{chat['id']}")).json["title"] == "New title"

    archived = await ann.patch(f"/api/chats/{chat['id']}", {"archived": True})
    assert archived.json["archived"] is True
    only_archived = await ann.get("/api/chats?archived=true")
    assert [c["id"] for c in only_archived.json["items"]] == [chat["id"]]
    not_archived = await ann.get("/api/chats?archived=false")
    assert [c["id"] for c in not_archived.json["items"]] == [other["id"]]

    deleted = await ann.delete(f"/api/chats/{chat['id']}")
    assert deleted.status == 204
    assert deleted.text == ""
    gone = await ann.get(f"/api/chats/{chat['id']}")
    assert gone.status == 404
    assert gone.json["error"]["code"] == "not_found"
    again = await ann.delete(f"/api/chats/{chat['id']}")
    assert again.status == 404
    assert [c["id"] for c in (await ann.get("/api/chats")).json["items"]] == [other["id"]]


async def test_patch_refuses_bad_fields(api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")
    chat = (await ann.post("/api/chats", {"title": "t"})).json
    for body, field in (({"title": ""}, "title"), ({"title": "   "}, "title"),
                        ({"pinned": "maybe"}, "pinned"), ({"user_id": "x"}, "user_id")):
        resp = await ann.patch(f"/api/chats/{chat['id']}", body)
        assert resp.status == 422, (body, resp.text)
        assert resp.json["error"]["field"] == field


async def test_another_user_gets_404_for_every_operation(api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")
    bob = await api.register_and_login("bob@example.com")
    chat = (await ann.post("/api/chats", {"title": "Ann's"})).json
    path = f"/api/chats/{chat['id']}"

    for resp in (
        await bob.get(path),
        await bob.patch(path, {"title": "mine now"}),
        await bob.delete(path),
        await bob.get(path + "/messages"),
    ):
        assert resp.status == 404, resp.text
        assert resp.json["error"]["code"] == "not_found"
        assert resp.json["error"]["message"] == "chat not found"
    assert (await bob.get("/api/chats")).json["items"] == []

    # Nothing changed for the owner.
    mine = await ann.get(path)
    assert mine.status == 200
    assert mine.json["title"] == "Ann's"
    # A chat id that exists nowhere answers exactly the same as another user's chat.
    missing = await bob.get(f"/api/chats/{new_id()}")
    assert missing.status == 404
    assert missing.json["error"]["message"] == "chat not found"


async def test_no_token_gets_401_everywhere(api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")
    chat = (await ann.post("/api/chats", {"title": "t"})).json
    path = f"/api/chats/{chat['id']}"
    for method, target, body in (
        ("GET", "/api/chats", None),
        ("POST", "/api/chats", {"title": "x"}),
        ("GET", path, None),
        ("PATCH", path, {"title": "x"}),
        ("DELETE", path, None),
        ("GET", path + "/messages", None),
    ):
        resp = await api.request(method, target, json_body=body)
        assert resp.status == 401, (method, target, resp.text)
        assert resp.json["error"]["code"] == "unauthorized"
    assert (await ann.get(path)).json["title"] == "t"


def _message(chat_id: str, user_id: str, role: Role, content: str, at: float,
             parent: str | None) -> Message:
    return Message(id=new_id(), chat_id=chat_id, user_id=user_id, role=role,
                   content=content, status="complete", created_at=at, updated_at=at, parent_id=parent)


async def test_branches_and_leaf_selection(app: RunningApp, api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")
    user_id = (await ann.get("/api/auth/me")).json["id"]
    chat = (await ann.post("/api/chats", {"title": "tree"})).json
    store = app.services.store
    # q1 -> a1 ; edit: q1' (sibling of q1) -> a2 ; regenerate a2: a3 (sibling of a2)
    q1 = _message(chat["id"], user_id, "user", "question", 100.0, None)
    a1 = _message(chat["id"], user_id, "assistant", "answer", 101.0, q1.id)
    q2 = _message(chat["id"], user_id, "user", "question, edited", 102.0, None)
    a2 = _message(chat["id"], user_id, "assistant", "answer 2", 103.0, q2.id)
    a3 = _message(chat["id"], user_id, "assistant", "answer 3", 104.0, q2.id)
    for m in (q1, a1, q2, a2, a3):
        await store.create_message(m)

    def ids(resp: Any) -> list[str]:
        return [m["id"] for m in resp.json["messages"]]

    current = await ann.get(f"/api/chats/{chat['id']}")
    assert current.status == 200
    assert ids(current) == [q2.id, a3.id]  # the path to the newest leaf
    by_id = {m["id"]: m for m in current.json["messages"]}
    assert by_id[q2.id]["sibling_ids"] == [q1.id, q2.id]
    assert by_id[a3.id]["sibling_ids"] == [a2.id, a3.id]
    assert by_id[a3.id]["parent_id"] == q2.id
    assert by_id[a3.id]["role"] == "assistant" and by_id[a3.id]["content"] == "answer 3"

    # Select the older regeneration, then the original question (its latest continuation).
    assert ids(await ann.get(f"/api/chats/{chat['id']}?leaf={a2.id}")) == [q2.id, a2.id]
    assert ids(await ann.get(f"/api/chats/{chat['id']}?leaf={q1.id}")) == [q1.id, a1.id]
    # An unknown leaf falls back to the current branch.
    assert ids(await ann.get(f"/api/chats/{chat['id']}?leaf=nope")) == [q2.id, a3.id]

    every = await ann.get(f"/api/chats/{chat['id']}/messages")
    assert every.status == 200
    assert [m["id"] for m in every.json["items"]] == [q1.id, a1.id, q2.id, a2.id, a3.id]
    assert every.json["next_cursor"] is None
    assert set(every.json["items"][0]) >= {
        "id", "chat_id", "parent_id", "role", "content", "reasoning", "status", "model", "usage", "created_at"
    }

    # Deleting the chat deletes its messages.
    assert (await ann.delete(f"/api/chats/{chat['id']}")).status == 204
    assert await store.list_messages(user_id, chat["id"]) == []


async def test_bad_query_parameters(api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")
    for query, field in (("limit=0", "limit"), ("limit=abc", "limit"), ("limit=201", "limit"),
                         ("cursor=%25%25%25", "cursor"), ("archived=perhaps", "archived"),
                         ("colour=red", "colour")):
        resp = await ann.get(f"/api/chats?{query}")
        assert resp.status == 422, (query, resp.text)
        assert resp.json["error"]["code"] == "validation_error"
        assert resp.json["error"]["field"] == field
