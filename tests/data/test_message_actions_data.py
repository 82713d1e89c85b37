"""Deleting a message takes its search hits; tags and ratings survive export and import.
On both stores (SQLite and MongoDB), with the app's search index."""

from __future__ import annotations

import json

import pytest

from gust.domain.ids import new_id, now
from gust.domain.models import Message
from tests.data.test_export_import import indexed, me
from tests.support.app_server import RunningApp
from tests.support.client import Api

pytestmark = pytest.mark.both_stores  # the app fixture runs on SQLite, then MongoDB


async def _pair(app: RunningApp, api: Api, chat_id: str, question: str, answer: str,
                parent_id: str | None) -> tuple[Message, Message]:
    user = await me(app, api)
    ts = now()
    q = Message(id=new_id(), chat_id=chat_id, user_id=user.id, team_id=user.team_id, role="user",
                content=question, status="complete", created_at=ts, updated_at=ts, parent_id=parent_id)
    a = Message(id=new_id(), chat_id=chat_id, user_id=user.id, team_id=user.team_id, role="assistant",
                content=answer, status="complete", created_at=ts + 0.001, updated_at=ts, parent_id=q.id,
                model="m1")
    await app.services.store.create_message(q)
    await app.services.store.create_message(a)
    return q, a


async def test_deleting_a_message_removes_its_search_hits_and_keeps_its_siblings(
    app: RunningApp, api: Api
) -> None:
    alice = await api.register_and_login("alice@example.com")
    chat = (await alice.post("/api/chats", {"title": "Animals"})).json
    q1, a1 = await _pair(app, alice, chat["id"], "tell me about zebras", "zebras have stripes", None)
    q2, a2 = await _pair(app, alice, chat["id"], "and quokkas?", "quokkas smile a lot", a1.id)
    q3, a3 = await _pair(app, alice, chat["id"], "and wombats?", "wombats dig burrows", a1.id)  # sibling
    await indexed(app)
    assert (await alice.get("/api/search?q=quokkas")).json["hits"]
    assert (await alice.delete(f"/api/chats/{chat['id']}/messages/{q2.id}")).status == 204
    await indexed(app)
    assert (await alice.get("/api/search?q=quokkas")).json["hits"] == []
    assert (await alice.get("/api/search?q=wombats")).json["hits"]
    assert (await alice.get("/api/search?q=zebras")).json["hits"]
    left = {m["id"] for m in (await alice.get(f"/api/chats/{chat['id']}/messages")).json["items"]}
    assert left == {q1.id, a1.id, q3.id, a3.id}


async def test_tags_and_ratings_round_trip_through_export_and_import(app: RunningApp, api: Api) -> None:
    alice = await api.register_and_login("alice@example.com")
    chat = (await alice.post("/api/chats", {"title": "Rated"})).json
    _, answer = await _pair(app, alice, chat["id"], "q", "a", None)
    await alice.patch(f"/api/chats/{chat['id']}", {"tags": ["Work", "ideas"]})
    rated = await alice.request("PUT", f"/api/chats/{chat['id']}/messages/{answer.id}/feedback",
                                json_body={"rating": -1, "comment": "too short"})
    assert rated.status == 200
    exported = await alice.get(f"/api/chats/{chat['id']}/export?format=json")
    doc = json.loads(exported.text)
    assert doc["chat"]["tags"] == ["work", "ideas"]
    assert doc["messages"][1]["feedback"] == {"rating": -1, "comment": "too short"}
    assert (await alice.delete(f"/api/chats/{chat['id']}")).status == 204

    imported = await alice.post("/api/import", doc)
    assert imported.status == 200, imported.text
    new_id_ = imported.json["imported"][0]["chat_id"]
    restored = (await alice.get(f"/api/chats/{new_id_}")).json
    assert restored["tags"] == ["work", "ideas"]
    assert restored["messages"][1]["feedback"] == {"rating": -1, "comment": "too short"}
    assert [c["id"] for c in (await alice.get("/api/chats?tag=work")).json["items"]] == [new_id_]

    doc["chat"]["tags"] = ["x" * 40]
    refused = await alice.post("/api/import", doc)
    assert refused.json["skipped"] and not refused.json["imported"]
