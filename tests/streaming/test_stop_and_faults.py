"""Stop, upstream faults and overload: each ends cleanly with events and a stored status."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import aiohttp
import pytest

from tests.streaming.helpers import auth, deltas, stream, user_id, wait_final
from tests.support.app_server import RunningApp
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.plugin import StartApp
from tests.support.sse import read_events
from tests.support.wait import until

TOKENS = [f"w{i} " for i in range(200)]


async def test_stop_mid_stream_keeps_partial_text_and_closes_upstream(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream
) -> None:
    upstream.script = Script(tokens=TOKENS, delay=0.02)
    async with user.session.post(
        user.base_url + "/chat/stream", data=json.dumps({"message": "go"}), headers=auth(user)
    ) as resp:
        head = await read_events(resp, stop_after=5)
        chat_id = head[0].data["chat_id"]
        stopped = await user.post(f"/api/chats/{chat_id}/stop", {})
        assert stopped.status == 200 and stopped.json["stopped"] is True
        tail = await read_events(resp)
    events = head + tail
    assert events[-1].event == "done" and events[-1].data["status"] == "stopped"
    partial = deltas(events)
    assert 0 < len(partial) < len("".join(TOKENS))
    final = await wait_final(stream_app, await user_id(user), head[0].data["message_id"])
    assert final.status == "stopped" and final.content == partial
    assert await until(lambda: upstream.disconnects > 0, timeout=5)  # the fake notices on its next write
    assert upstream.disconnects == 1 and upstream.completed == 0
    # Nothing live any more: stopping again is a no-op.
    again = await user.post(f"/api/chats/{chat_id}/stop")
    assert again.status == 200 and again.json == {"stopped": False, "message_id": None, "generation_id": None}


FAULTS = [
    (Script(status=401), "upstream_auth", False),
    (Script(status=403), "upstream_forbidden", False),
    (Script(status=404), "upstream_not_found", False),
    (Script(status=429, retry_after="7"), "upstream_rate_limited", True),
    (Script(status=500), "upstream_unavailable", True),
    (Script(status=503), "upstream_unavailable", True),
    (Script(tokens=["a", "b", "c", "d"], malformed_after=2), "upstream_protocol", True),
    (Script(tokens=["a", "b", "c", "d"], close_after=2), "upstream_disconnected", True),
    (Script(tokens=["a", "b", "c", "d"], hang_after=2), "upstream_timeout", True),
    (Script(first_token_delay=3), "upstream_timeout", True),
]


@pytest.mark.parametrize(
    ("script", "code", "retryable"), FAULTS, ids=[f[1] + str(i) for i, f in enumerate(FAULTS)]
)
async def test_upstream_fault_ends_with_error_event_and_stored_status(
    start_stream_app: StartApp, upstream: FakeUpstream, script: Script, code: str, retryable: bool
) -> None:
    app = await start_stream_app(upstream_first_token_timeout=1.0, upstream_idle_timeout=0.5)
    upstream.script = script
    async with aiohttp.ClientSession() as http:
        api = await app.sign_up(http, "f@example.com")
        events = await stream(api, {"message": "go"})
        types = [e.event for e in events]
        assert types[0] == "start" and types[-2:] == ["error", "done"]
        error = events[-2].data
        assert error["code"] == code and error["retryable"] is retryable and error["message"]
        if script.retry_after is not None:
            assert error["retry_after"] == float(script.retry_after)
        assert events[-1].data["status"] == "error"
        final = await wait_final(app, await user_id(api), events[0].data["message_id"])
        assert final.status == "error" and final.error is not None and final.error["code"] == code
        assert final.content == deltas(events)  # partial text kept
        if script.close_after or script.hang_after or script.malformed_after:
            assert final.content == "ab"


async def test_unreachable_upstream_is_an_error_event(start_stream_app: StartApp, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "closed.json"
    path.write_text(json.dumps([{"id": "gone", "base_url": f"http://127.0.0.1:{port}/v1"}]))
    app = await start_stream_app(models_file=path)
    async with aiohttp.ClientSession() as http:
        api = await app.sign_up(http, "u@example.com")
        events = await stream(api, {"message": "go"})
        assert [e.event for e in events] == ["start", "error", "done"]
        assert events[1].data["code"] == "upstream_unreachable" and events[1].data["retryable"] is True


async def test_overload_answers_503_with_retry_after(
    start_stream_app: StartApp, upstream: FakeUpstream
) -> None:
    app = await start_stream_app(max_active_generations=1)
    upstream.script = Script(tokens=TOKENS, delay=0.02)
    async with aiohttp.ClientSession() as http:
        api = await app.sign_up(http, "o@example.com")
        chat = await api.post("/api/chats", {})
        first = await api.post(f"/api/chats/{chat.json['id']}/messages", {"message": "one"})
        assert first.status == 202
        second = await api.post("/chat/stream", {"message": "two"})
        assert second.status == 503 and second.json["error"]["code"] == "overloaded"
        assert int(second.headers["Retry-After"]) > 0
        stop = await api.post(f"/api/chats/{chat.json['id']}/stop")
        assert stop.json["stopped"] is True
        await wait_final(app, await user_id(api), first.json["message_id"])
        third = await api.post("/chat/message", {"message": "three"})
        assert third.status == 200  # capacity is back once the first one ended


async def test_simultaneous_sends_cannot_exceed_the_limit(
    start_stream_app: StartApp, upstream: FakeUpstream
) -> None:
    # Requests that arrive together are all past the capacity check while their chat and
    # message writes are in flight: the limit must count them before their jobs exist.
    app = await start_stream_app(max_active_generations=2)
    upstream.script = Script(tokens=TOKENS, delay=0.05)
    async with aiohttp.ClientSession() as http:
        api = await app.sign_up(http, "sim@example.com")
        chats = [(await api.post("/api/chats", {})).json["id"] for _ in range(6)]
        answers = await asyncio.gather(
            *(api.post(f"/api/chats/{chat}/messages", {"message": "hi"}) for chat in chats)
        )
        assert sorted(a.status for a in answers) == [202, 202, 503, 503, 503, 503]
        owner = await user_id(api)
        for chat, answer in zip(chats, answers, strict=True):
            if answer.status == 202:
                assert (await api.post(f"/api/chats/{chat}/stop")).json["stopped"] is True
                await wait_final(app, owner, answer.json["message_id"])
        again = await api.post(f"/api/chats/{chats[0]}/messages", {"message": "again"})
        assert again.status == 202  # the places were given back


async def test_message_sends_are_rate_limited_per_user(start_stream_app: StartApp) -> None:
    app = await start_stream_app(rate_limit_messages_per_minute=2)
    async with aiohttp.ClientSession() as http:
        api = await app.sign_up(http, "rl@example.com")
        other = await api.as_user(None).register_and_login("rl2@example.com")
        assert (await api.post("/chat/message", {"message": "one"})).status == 200
        assert (await api.post("/chat/message", {"message": "two"})).status == 200
        refused = await api.post("/chat/stream", {"message": "three"})
        assert refused.status == 429 and refused.json["error"]["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1
        chats = await api.get("/api/chats")
        assert len(chats.json["items"]) == 2  # the refused message was not stored
        assert (await other.post("/chat/message", {"message": "mine"})).status == 200  # per user
