"""POST /chat/stream end to end: SSE shape, stored text, NDJSON, JSON fallback, curl."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.streaming.helpers import auth, deltas, kinds, stream, user_id, wait_final
from tests.support.app_server import RunningApp
from tests.support.client import Api
from tests.support.fake_upstream import DEFAULT_TOKENS, FakeUpstream, Script
from tests.support.plugin import StartApp
from tests.support.sse import parse_sse


async def test_curl_streams_valid_sse_and_stores_exact_text(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream
) -> None:
    upstream.script = Script(split_utf8=True)  # multi-byte characters cut across TCP writes
    proc = await asyncio.create_subprocess_exec(
        "curl",
        "-sN",
        "-X",
        "POST",
        stream_app.url + "/chat/stream",
        "-H",
        f"Authorization: Bearer {user.token}",
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps({"message": "Say hello"}),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    events, _ = parse_sse(out.decode("utf-8"))
    assert kinds(events) == ["start", "delta", "usage", "done"]
    start, done = events[0].data, events[-1].data
    assert start["message_id"] == done["message_id"] and start["user_message_id"]
    assert start["model"] == "fake-model" and start["generation_id"] == start["message_id"]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(e.id and e.id.startswith(start["generation_id"] + ":") for e in events)
    assert deltas(events) == "".join(DEFAULT_TOKENS)
    assert done["status"] == "complete" and done["finish_reason"] == "stop"
    assert done["usage"] == {"prompt_tokens": 11, "completion_tokens": len(DEFAULT_TOKENS)}
    stored = await stream_app.services.store.get_message(await user_id(user), start["message_id"])
    assert stored is not None
    assert stored.content.encode() == "".join(DEFAULT_TOKENS).encode()  # byte for byte
    assert stored.status == "complete" and stored.usage == done["usage"]
    # The chat was created, titled from the message, and holds both messages in order.
    chat = await user.get(f"/api/chats/{start['chat_id']}")
    assert chat.status == 200
    assert [m["role"] for m in chat.json["messages"]] == ["user", "assistant"]
    assert chat.json["messages"][1]["content"] == "".join(DEFAULT_TOKENS)
    assert chat.json["title"] == "Say hello"


async def test_upstream_receives_history_and_options(user: Api, upstream: FakeUpstream) -> None:
    first = await stream(user, {"message": "first question"})
    chat_id = first[0].data["chat_id"]
    await stream(
        user, {"chat_id": chat_id, "message": "second question", "temperature": 0.3, "max_tokens": 50}
    )
    sent = upstream.requests[-1]
    assert sent["model"] == "fake-model" and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["temperature"] == 0.3 and sent["max_tokens"] == 50
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][0]["content"] == "first question"
    assert sent["messages"][1]["content"] == "".join(DEFAULT_TOKENS)
    assert sent["messages"][2]["content"] == "second question"


async def test_reasoning_is_streamed_and_stored_apart(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream
) -> None:
    upstream.script = Script(reasoning=["Let me ", "think."], tokens=["Answer", "."])
    events = await stream(user, {"message": "why?"})
    assert kinds(events) == ["start", "reasoning", "delta", "usage", "done"]
    assert "".join(e.data["delta"] for e in events if e.event == "reasoning") == "Let me think."
    stored = await stream_app.services.store.get_message(await user_id(user), events[0].data["message_id"])
    assert stored is not None and stored.content == "Answer." and stored.reasoning == "Let me think."


async def test_ndjson_when_asked(user: Api) -> None:
    headers = auth(user, Accept="application/x-ndjson")
    async with user.session.post(
        user.base_url + "/chat/stream", data=json.dumps({"message": "hi"}), headers=headers
    ) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in (await resp.text()).splitlines()]
    assert [x["type"] for x in lines][0] == "start" and lines[-1]["type"] == "done"
    assert "".join(x["delta"] for x in lines if x["type"] == "delta") == "".join(DEFAULT_TOKENS)
    assert all(x["id"].endswith(f":{i}") for i, x in enumerate(lines, start=1))


async def test_chat_message_fallback_returns_the_finished_message(user: Api) -> None:
    resp = await user.post("/chat/message", {"message": "hi"})
    assert resp.status == 200, resp.text
    assert resp.json["role"] == "assistant" and resp.json["status"] == "complete"
    assert resp.json["content"] == "".join(DEFAULT_TOKENS)


async def test_chat_message_fallback_reports_upstream_errors(user: Api, upstream: FakeUpstream) -> None:
    upstream.script = Script(status=500)
    resp = await user.post("/chat/message", {"message": "hi"})
    assert resp.status == 502
    assert resp.json["error"]["code"] == "upstream_unavailable" and resp.json["error"]["retryable"] is True


async def test_validation_happens_before_the_stream(user: Api) -> None:
    resp = await user.post("/chat/stream", {"message": "   "})
    assert resp.status == 422 and resp.json["error"]["field"] == "message"
    resp = await user.post("/chat/stream", {"message": "hi", "model": "nope"})
    assert resp.status == 422 and "fake-model" in resp.json["error"]["message"]
    resp = await user.post("/chat/stream", {"message": "hi", "chat_id": "missing"})
    assert resp.status == 404
    resp = await user.post("/chat/stream", {"message": "hi", "temperature": 9})
    assert resp.status == 422 and resp.json["error"]["field"] == "temperature"
    anonymous = user.as_user(None)
    resp = await anonymous.post("/chat/stream", {"message": "hi"}, auth=False)
    assert resp.status == 401


async def test_another_user_cannot_post_into_or_follow_a_chat(stream_app: RunningApp, user: Api) -> None:
    events = await stream(user, {"message": "private"})
    chat_id = events[0].data["chat_id"]
    other = await user.as_user(None).register_and_login("intruder@example.com")
    for resp in (
        await other.post("/chat/stream", {"message": "hi", "chat_id": chat_id}),
        await other.post(f"/api/chats/{chat_id}/messages", {"message": "hi"}),
        await other.get(f"/api/chats/{chat_id}/events"),
        await other.post(f"/api/chats/{chat_id}/stop", {}),
        await other.post(f"/api/chats/{chat_id}/messages/{events[0].data['message_id']}/regenerate", {}),
    ):
        assert resp.status == 404, resp.text


async def test_models_endpoint_lists_the_usable_models(user: Api) -> None:
    resp = await user.get("/api/models")
    assert resp.status == 200
    assert [m["id"] for m in resp.json["items"]] == ["fake-model"] and resp.json["default"] == "fake-model"


async def test_stored_message_after_wait(stream_app: RunningApp, user: Api) -> None:
    resp = await user.post("/api/chats", {"title": "t"})
    accepted = await user.post(f"/api/chats/{resp.json['id']}/messages", {"message": "hi"})
    assert accepted.status == 202
    assert accepted.json["generation_id"] == accepted.json["message_id"]
    final = await wait_final(stream_app, await user_id(user), accepted.json["message_id"])
    assert final.content == "".join(DEFAULT_TOKENS)


async def test_silence_is_filled_with_pings(start_stream_app: StartApp, upstream: FakeUpstream) -> None:
    app = await start_stream_app(sse_ping_interval=0.1)
    upstream.script = Script(tokens=["late"], first_token_delay=0.6)
    async with aiohttp.ClientSession() as http:
        api = await app.sign_up(http, "p@example.com")
        async with http.post(
            app.url + "/chat/stream", data=json.dumps({"message": "hi"}), headers=auth(api)
        ) as resp:
            events, pings = parse_sse(await resp.text())
    assert pings >= 2  # the upstream was silent for 0.6 s
    assert deltas(events) == "late" and events[-1].event == "done"
