"""Single-message actions over HTTP: continue an answer, delete a subtree, rate answers."""

from __future__ import annotations

import json
import logging

import aiohttp
import pytest

from gust.domain.ids import new_id, now
from gust.domain.models import Message
from tests.streaming.helpers import deltas, follow, stream, user_id, wait_final
from tests.support.app_server import RunningApp
from tests.support.client import Api, Response
from tests.support.env import require_env
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.plugin import StartApp
from tests.support.wait import until


async def _answer(api: Api, upstream: FakeUpstream, tokens: list[str], finish: str = "stop",
                  chat_id: str | None = None, parent_id: str | None = None) -> dict[str, str]:
    upstream.script = Script(tokens=tokens, finish_reason=finish)
    body: dict[str, object] = {"message": "question " + new_id()[:6]}
    if chat_id:
        body["chat_id"] = chat_id
    if parent_id:
        body["parent_id"] = parent_id
    events = await stream(api, body)
    start = events[0].data
    return {"chat_id": start["chat_id"], "message_id": start["message_id"],
            "user_message_id": start["user_message_id"]}


async def _put(api: Api, path: str, body: object) -> Response:
    return await api.request("PUT", path, json_body=body)


# -- continue ---------------------------------------------------------------------------
async def test_continue_a_cut_answer_appends_to_the_same_message(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream
) -> None:
    first = await _answer(user, upstream, ["The start ", "of it"], finish="length")
    chat_id, message_id = first["chat_id"], first["message_id"]
    detail = await user.get(f"/api/chats/{chat_id}")
    answer = detail.json["messages"][-1]
    assert answer["finish_reason"] == "length" and answer["content"] == "The start of it"

    upstream.script = Script(tokens=[" and", " the end."], finish_reason="stop")
    accepted = await user.post(f"/api/chats/{chat_id}/messages/{message_id}/continue")
    assert accepted.status == 202, accepted.text
    assert accepted.json["message_id"] == message_id
    events = await follow(user, chat_id)
    assert events[0].event == "start" and events[0].data["message_id"] == message_id
    assert events[0].data["continues"] == "The start of it"
    assert deltas(events) == " and the end."  # only the new text
    assert events[-1].data["status"] == "complete" and events[-1].data["finish_reason"] == "stop"
    final = await wait_final(stream_app, await user_id(user), message_id)
    assert final.content == "The start of it and the end."
    assert final.finish_reason == "stop"
    # The model saw the history, the partial answer as its own turn, and a request to go on.
    sent = upstream.requests[-1]["messages"]
    assert sent[-2] == {"role": "assistant", "content": "The start of it"}
    assert sent[-1]["role"] == "user" and "Continue" in sent[-1]["content"]
    # Still one answer: no new sibling.
    messages = (await user.get(f"/api/chats/{chat_id}/messages")).json["items"]
    assert [m["id"] for m in messages if m["role"] == "assistant"] == [message_id]


async def test_continue_refuses_bad_targets(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    first = await _answer(user, upstream, ["hi"])
    chat_id, message_id = first["chat_id"], first["message_id"]
    base = f"/api/chats/{chat_id}/messages"
    assert (await user.post(f"{base}/{new_id()}/continue")).status == 404
    assert (await user.post(f"/api/chats/{new_id()}/messages/{message_id}/continue")).status == 404
    question = await user.post(f"{base}/{first['user_message_id']}/continue")
    assert question.status == 422 and question.error_code == "validation_error"
    other = await stream_app.sign_up(http, "other@example.com")
    assert (await other.post(f"{base}/{message_id}/continue")).status == 404
    # While the chat answers something else: 409, and nothing changes.
    upstream.script = Script(tokens=[f"w{i} " for i in range(400)], delay=0.02)
    busy = await user.post(base, {"message": "a long one"})
    assert busy.status == 202
    conflict = await user.post(f"{base}/{message_id}/continue")
    assert conflict.status == 409 and conflict.error_code == "generation_active"
    await user.post(f"/api/chats/{chat_id}/stop")
    final = await wait_final(stream_app, await user_id(user), message_id)
    assert final.content == "hi" and final.status == "complete"


async def test_continue_goes_through_admission(
    start_stream_app: StartApp, http: aiohttp.ClientSession, upstream: FakeUpstream
) -> None:
    app = await start_stream_app(max_active_generations=1)
    api = await app.sign_up(http, "busy@example.com")
    first = await _answer(api, upstream, ["cut"], finish="length")
    other = await _answer(api, upstream, ["x"])
    upstream.script = Script(tokens=[f"w{i} " for i in range(400)], delay=0.02)
    busy = await api.post(f"/api/chats/{other['chat_id']}/messages", {"message": "long one"})
    assert busy.status == 202
    refused = await api.post(f"/api/chats/{first['chat_id']}/messages/{first['message_id']}/continue")
    assert refused.status == 503 and refused.error_code == "overloaded"
    await api.post(f"/api/chats/{other['chat_id']}/stop")


# -- delete -----------------------------------------------------------------------------
async def test_delete_a_message_takes_its_subtree_and_keeps_siblings(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream
) -> None:
    a = await _answer(user, upstream, ["one"])
    chat_id = a["chat_id"]
    b = await _answer(user, upstream, ["two"], chat_id=chat_id)
    c = await _answer(user, upstream, ["three"], chat_id=chat_id)
    # A sibling of b's question: another branch under a's answer.
    sibling = await _answer(user, upstream, ["other branch"], chat_id=chat_id, parent_id=a["message_id"])
    resp = await user.delete(f"/api/chats/{chat_id}/messages/{b['user_message_id']}")
    assert resp.status == 204, resp.text
    left = {m["id"] for m in (await user.get(f"/api/chats/{chat_id}/messages")).json["items"]}
    assert left == {a["user_message_id"], a["message_id"], sibling["user_message_id"], sibling["message_id"]}
    for gone in (b["user_message_id"], b["message_id"], c["user_message_id"], c["message_id"]):
        assert gone not in left
    # The search documents of the deleted messages are queued for removal.
    tombstones = await stream_app.services.store.list_search_tombstones(limit=100)
    removed = {t.target_id for t in tombstones if t.kind == "message"}
    assert {b["message_id"], c["message_id"], c["user_message_id"]} <= removed
    assert a["message_id"] not in removed
    # Again: gone.
    assert (await user.delete(f"/api/chats/{chat_id}/messages/{b['user_message_id']}")).status == 404


async def test_delete_stops_a_live_answer_inside_the_subtree(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream
) -> None:
    a = await _answer(user, upstream, ["one"])
    chat_id = a["chat_id"]
    upstream.script = Script(tokens=[f"w{i} " for i in range(500)], delay=0.02)
    sent = await user.post(f"/api/chats/{chat_id}/messages", {"message": "long"})
    assert sent.status == 202
    hub = stream_app.services.hub
    assert hub is not None
    resp = await user.delete(f"/api/chats/{chat_id}/messages/{sent.json['user_message_id']}")
    assert resp.status == 204
    assert await hub.live_generation_id(chat_id) is None
    uid = await user_id(user)
    assert await stream_app.services.store.get_message(uid, sent.json["message_id"]) is None
    # The stopped job's last write (awaited by the delete) did not bring the record back.
    items = (await user.get(f"/api/chats/{chat_id}/messages")).json["items"]
    assert {m["id"] for m in items} == {a["user_message_id"], a["message_id"]}


async def test_delete_bad_input(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    a = await _answer(user, upstream, ["one"])
    chat_id = a["chat_id"]
    assert (await user.delete(f"/api/chats/{chat_id}/messages/{new_id()}")).status == 404
    assert (await user.delete(f"/api/chats/{new_id()}/messages/{a['message_id']}")).status == 404
    other = await stream_app.sign_up(http, "other@example.com")
    assert (await other.delete(f"/api/chats/{chat_id}/messages/{a['message_id']}")).status == 404
    assert len((await user.get(f"/api/chats/{chat_id}/messages")).json["items"]) == 2


async def test_delete_walks_a_very_deep_chat_without_recursion(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream
) -> None:
    a = await _answer(user, upstream, ["root"])
    uid = await user_id(user)
    me = await stream_app.services.store.get_user(uid)
    assert me is not None
    parent, store, ts = a["message_id"], stream_app.services.store, now()
    for i in range(3000):  # deeper than Python's recursion limit
        m = Message(id=new_id(), chat_id=a["chat_id"], user_id=uid, team_id=me.team_id,
                    role="user" if i % 2 == 0 else "assistant", content=f"m{i}", status="complete",
                    created_at=ts + i / 1000, updated_at=ts, parent_id=parent)
        await store.create_message(m)
        parent = m.id
    resp = await user.delete(f"/api/chats/{a['chat_id']}/messages/{a['message_id']}")
    assert resp.status == 204
    items = (await user.get(f"/api/chats/{a['chat_id']}/messages")).json["items"]
    assert [m["id"] for m in items] == [a["user_message_id"]]


# -- feedback ---------------------------------------------------------------------------
async def test_feedback_set_change_clear_and_count_per_model(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    a = await _answer(user, upstream, ["good"])
    b = await _answer(user, upstream, ["bad"], chat_id=a["chat_id"])
    path = f"/api/chats/{a['chat_id']}/messages"
    up = await _put(user, f"{path}/{a['message_id']}/feedback", {"rating": 1, "comment": " spot on "})
    assert up.status == 200, up.text
    assert up.json["feedback"] == {"rating": 1, "comment": "spot on"}
    down = await _put(user, f"{path}/{b['message_id']}/feedback", {"rating": -1})
    assert down.json["feedback"] == {"rating": -1, "comment": None}
    detail = await user.get(f"/api/chats/{a['chat_id']}")
    assert [m["feedback"] for m in detail.json["messages"] if m["role"] == "assistant"] == [
        {"rating": 1, "comment": "spot on"}, {"rating": -1, "comment": None}]

    # Another team's rated answer never counts for this team's admin.
    store = stream_app.services.store
    ts = now()
    await store.create_message(Message(
        id=new_id(), chat_id=new_id(), user_id=new_id(), team_id="elsewhere", role="assistant",
        content="x", status="complete", created_at=ts, updated_at=ts, model="fake-model",
        feedback={"rating": 1, "comment": None, "updated_at": ts}))
    counts = await user.get("/api/admin/feedback")  # the first account is the admin
    assert counts.status == 200, counts.text
    assert counts.json["items"] == [{"model": "fake-model", "up": 1, "down": 1}]

    cleared = await _put(user, f"{path}/{b['message_id']}/feedback", {"rating": 0})
    assert cleared.status == 200 and cleared.json["feedback"] is None
    counts = await user.get("/api/admin/feedback")
    assert counts.json["items"] == [{"model": "fake-model", "up": 1, "down": 0}]

    member = await stream_app.sign_up(http, "member@example.com")
    assert (await member.get("/api/admin/feedback")).status == 403

    exported = await user.get(f"/api/chats/{a['chat_id']}/export?format=json")
    assert exported.status == 200
    rated = [m["feedback"] for m in json.loads(exported.text)["messages"] if m["role"] == "assistant"]
    assert rated == [{"rating": 1, "comment": "spot on"}, None]
    markdown = await user.get(f"/api/chats/{a['chat_id']}/export?format=md")
    assert "*Feedback: 👍 helpful: spot on*" in markdown.text


async def test_feedback_bad_input(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    a = await _answer(user, upstream, ["x"])
    path = f"/api/chats/{a['chat_id']}/messages"
    for body in ({"rating": 2}, {"rating": "up"}, {"rating": 1, "comment": 5}, {}, {"rating": 1, "x": 1}):
        resp = await _put(user, f"{path}/{a['message_id']}/feedback", body)
        assert resp.status == 422, (body, resp.text)
    question = await _put(user, f"{path}/{a['user_message_id']}/feedback", {"rating": 1})
    assert question.status == 422
    assert (await _put(user, f"{path}/{new_id()}/feedback", {"rating": 1})).status == 404
    other = await stream_app.sign_up(http, "other@example.com")
    assert (await _put(other, f"{path}/{a['message_id']}/feedback", {"rating": 1})).status == 404


async def test_a_continuation_on_a_shared_bus_is_followed_and_never_reaped_while_it_runs(
    start_stream_app: StartApp, http: aiohttp.ClientSession, upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis_url = require_env("TEST_REDIS_URL", "a Redis server")
    app = await start_stream_app(redis_url=redis_url, generation_owner_timeout=3, stream_grace_period=0.1)
    api = await app.sign_up(http, "shared@example.com")
    first = await _answer(api, upstream, ["cut "], finish="length")
    hub = app.services.hub
    assert hub is not None
    # The first generation (whose id is the message's) leaves this process, as it would be
    # absent from every other process: only the continuation's own id can show its owner.
    assert await until(lambda: first["message_id"] not in hub.generations, timeout=10, interval=0.05)
    tokens = [f"w{i} " for i in range(150)]
    upstream.script = Script(tokens=tokens, delay=0.02)  # longer than the reaper's patience
    with caplog.at_level(logging.WARNING, logger="gust.services.reaper"):
        accepted = await api.post(f"/api/chats/{first['chat_id']}/messages/{first['message_id']}/continue")
        assert accepted.status == 202
        events = await follow(api, first["chat_id"])
        final = await wait_final(app, await user_id(api), first["message_id"])
    assert deltas(events) == "".join(tokens)
    assert events[-1].data["status"] == "complete"
    assert final.status == "complete" and final.content == "cut " + "".join(tokens)
    assert not [r for r in caplog.records if "marked interrupted" in r.getMessage()]
