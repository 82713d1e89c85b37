"""The tool loop of chat answers over HTTP (issue 21): the fake upstream streams OpenAI-format
tool calls; the app runs them through its real tool box (built-ins: current_time, and
fetch_url against the local site server for a slow call) and sends the results back."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.streaming.helpers import auth, deltas, follow, stream, user_id, wait_final
from tests.streaming.test_processes import login, server_env, started
from tests.support.app_server import RunningApp, ServerProcess
from tests.support.backends import Backend
from tests.support.client import Api
from tests.support.env import free_port, require_env
from tests.support.fake_upstream import FakeUpstream, Script, ScriptedCall
from tests.support.plugin import StartApp
from tests.support.site_server import SiteServer
from tests.support.sse import SSEEvent, read_events
from tests.support.wait import until

TOOLS_MODEL = "tool-model"
PLAIN_MODEL = "plain-model"  # no `tools` feature
UTC = '{"timezone": "UTC"}'


def models_file(upstream: FakeUpstream, directory: Path) -> Path:
    path = directory / "tool-models.json"
    entry = {"provider": "openai", "base_url": upstream.url, "context_window": 8192}
    models = [
        {"id": TOOLS_MODEL, "features": ["streaming", "tools"], **entry},
        {"id": PLAIN_MODEL, "features": ["streaming"], **entry},
    ]
    path.write_text(json.dumps({"models": models, "default": TOOLS_MODEL}))
    return path


StartToolApp = Callable[..., Awaitable[RunningApp]]


@pytest.fixture
def start_tool_app(
    start_stream_app: StartApp, upstream: FakeUpstream, tmp_path: Path, backend: Backend
) -> StartToolApp:
    """The app with a model that takes tools and one that does not, on `backend`'s store."""

    async def start(**overrides: Any) -> RunningApp:
        path = models_file(upstream, tmp_path)
        return await start_stream_app(models_file=path, **backend.settings(), **overrides)

    return start


@pytest.fixture
async def site() -> AsyncIterator[SiteServer]:
    server = await SiteServer().start()
    yield server
    await server.stop()


async def sign_up(app: RunningApp, http: aiohttp.ClientSession) -> Api:
    return await app.sign_up(http, "tools@example.com")


def of(events: list[SSEEvent], kind: str) -> list[dict[str, Any]]:
    return [e.data for e in events if e.event == kind]


def records(events: list[SSEEvent]) -> list[dict[str, Any]]:
    """The calls as the events told them: what the answer must store."""
    results = {r["call_id"]: r for r in of(events, "tool_result")}
    return [
        {
            **{k: c[k] for k in ("call_id", "name", "arguments")},
            **{k: results[c["call_id"]][k] for k in ("ok", "content", "elapsed_ms")},
        }
        for c in of(events, "tool_call")
    ]


async def stored_calls(app: RunningApp, api: Api, events: list[SSEEvent]) -> list[dict[str, Any]] | None:
    message = await wait_final(app, await user_id(api), events[0].data["message_id"])
    return message.tool_calls


@pytest.mark.both_stores
async def test_a_call_is_run_and_its_result_reaches_the_upstream(
    start_tool_app: StartToolApp, http: aiohttp.ClientSession, upstream: FakeUpstream
) -> None:
    app = await start_tool_app()
    api = await sign_up(app, http)
    upstream.script = Script.calling(
        ScriptedCall("current_time", UTC, call_id="call_a"), then=Script(tokens=["It is ", "noon."])
    )
    events = await stream(api, {"message": "What time is it?", "tools": ["current_time"]})
    kinds = [e.event for e in events if e.event not in ("delta", "usage")]
    assert kinds == ["start", "tool_call", "tool_result", "done"]
    assert of(events, "tool_call") == [
        {"type": "tool_call", "call_id": "call_a", "name": "current_time", "arguments": UTC}
    ]
    result = of(events, "tool_result")[0]
    assert result["ok"] is True and "UTC" in result["content"] and result["elapsed_ms"] >= 0
    assert deltas(events) == "It is noon." and events[-1].data["status"] == "complete"
    # The first request offered the tool; the second carried the call and its result.
    assert len(upstream.requests) == 2
    offered = upstream.requests[0]["tools"]
    assert [t["function"]["name"] for t in offered] == ["current_time"]
    sent = [{"role": "tool", "tool_call_id": "call_a", "content": result["content"]}]
    assert upstream.tool_messages() == sent
    assistant = upstream.requests[1]["messages"][-2]
    assert assistant["role"] == "assistant" and assistant["tool_calls"] == [
        {"id": "call_a", "type": "function", "function": {"name": "current_time", "arguments": UTC}}
    ]
    # Stored as the events said, and served by the API.
    assert await stored_calls(app, api, events) == records(events)
    listed = await api.get(f"/api/chats/{events[0].data['chat_id']}/messages")
    assert listed.json["items"][-1]["tool_calls"] == records(events)


async def test_parallel_calls_are_all_answered_in_order(
    start_tool_app: StartToolApp, http: aiohttp.ClientSession, upstream: FakeUpstream
) -> None:
    app = await start_tool_app()
    api = await sign_up(app, http)
    zones = ["Europe/Paris", "Asia/Tokyo", "America/Lima"]
    calls = [
        ScriptedCall("current_time", json.dumps({"timezone": zone}), call_id=f"c{n}")
        for n, zone in enumerate(zones)
    ]
    upstream.script = Script.calling(*calls, then=Script(tokens=["Done."]), interleave=True, tool_fragment=3)
    events = await stream(api, {"message": "times?", "tools": ["current_time"]})
    assert [c["call_id"] for c in of(events, "tool_call")] == ["c0", "c1", "c2"]
    assert [json.loads(c["arguments"])["timezone"] for c in of(events, "tool_call")] == zones
    answered = upstream.tool_messages()
    assert [m["tool_call_id"] for m in answered] == ["c0", "c1", "c2"]
    assert all(z in m["content"] for z, m in zip(zones, answered, strict=True))
    assert await stored_calls(app, api, events) == records(events)
    assert deltas(events) == "Done."


async def test_malformed_arguments_and_unknown_tools_are_error_results_for_the_model(
    start_tool_app: StartToolApp, http: aiohttp.ClientSession, upstream: FakeUpstream
) -> None:
    app = await start_tool_app()
    api = await sign_up(app, http)
    upstream.script = Script.calling(
        ScriptedCall("current_time", '{"timezone": "UT', call_id="bad_json"),
        ScriptedCall("current_time", "[1, 2]", call_id="not_object"),
        ScriptedCall("delete_everything", "{}", call_id="unknown"),
        # A real tool the message did not offer is unknown to this answer.
        ScriptedCall("fetch_url", '{"url": "http://127.0.0.1/"}', call_id="not_offered"),
        then=Script(tokens=["Sorry."]),
    )
    events = await stream(api, {"message": "go", "tools": ["current_time"]})
    results = {r["call_id"]: r for r in of(events, "tool_result")}
    assert set(results) == {"bad_json", "not_object", "unknown", "not_offered"}
    assert not any(r["ok"] for r in results.values())
    assert results["bad_json"]["content"].startswith("invalid arguments")
    assert results["not_object"]["content"].startswith("invalid arguments")
    assert results["unknown"]["content"] == "unknown tool 'delete_everything'"
    assert results["not_offered"]["content"] == "unknown tool 'fetch_url'"
    sent = {m["tool_call_id"]: m["content"] for m in upstream.tool_messages()}
    assert sent == {k: r["content"] for k, r in results.items()}
    assert events[-1].data["status"] == "complete" and deltas(events) == "Sorry."
    assert await stored_calls(app, api, events) == records(events)


async def test_a_model_that_never_stops_calling_ends_at_the_call_limit(
    start_tool_app: StartToolApp, http: aiohttp.ClientSession, upstream: FakeUpstream
) -> None:
    app = await start_tool_app(tool_max_calls=3)
    api = await sign_up(app, http)
    upstream.script = Script.calling(ScriptedCall("current_time", UTC))  # calls again, every time
    events = await stream(api, {"message": "loop", "tools": ["current_time"]})
    assert len(of(events, "tool_call")) == 3 and len(of(events, "tool_result")) == 3
    error = of(events, "error")[0]
    assert error["code"] == "tool_call_limit" and "3 tool calls" in error["message"]
    assert events[-1].event == "done" and events[-1].data["status"] == "error"
    assert len(upstream.requests) == 4  # three rounds answered, the fourth asked for more
    stored = await stored_calls(app, api, events)
    assert stored == records(events) and len(stored) == 3
    message = await wait_final(app, await user_id(api), events[0].data["message_id"])
    assert message.status == "error" and message.error and message.error["code"] == "tool_call_limit"


@pytest.mark.both_stores
async def test_stop_cancels_a_running_call(
    start_tool_app: StartToolApp, http: aiohttp.ClientSession, upstream: FakeUpstream, site: SiteServer
) -> None:
    app = await start_tool_app(ssrf_allowed_hosts="127.0.0.1", tool_timeout_s=120, research_page_timeout=120)
    api = await sign_up(app, http)
    arguments = json.dumps({"url": site.url("/endless")})
    upstream.script = Script.calling(ScriptedCall("fetch_url", arguments, call_id="slow"), then=Script())
    async with api.session.post(
        api.base_url + "/chat/stream",
        data=json.dumps({"message": "read it", "tools": ["fetch_url"]}),
        headers=auth(api),
    ) as resp:
        head = await read_events(resp, stop_after=2)
        assert [e.event for e in head] == ["start", "tool_call"]
        assert await until(lambda: site._endless_writers == 1, timeout=10)  # the call is running
        stopped = await api.post(f"/api/chats/{head[0].data['chat_id']}/stop", {})
        assert stopped.json["stopped"] is True
        tail = await read_events(resp)
    events = head + tail
    assert of(events, "tool_result") == [
        {"type": "tool_result", "call_id": "slow", "ok": False, "content": "the call was stopped",
         "elapsed_ms": of(events, "tool_result")[0]["elapsed_ms"]}
    ]
    assert events[-1].data["status"] == "stopped"
    assert await until(lambda: site._endless_writers == 0, timeout=10)  # the fetch was cancelled
    assert len(upstream.requests) == 1  # the model was not asked again
    assert await stored_calls(app, api, events) == records(events)


async def test_resume_mid_tool_with_last_event_id(
    start_tool_app: StartToolApp, http: aiohttp.ClientSession, upstream: FakeUpstream, site: SiteServer
) -> None:
    # The call reads the endless page until its time limit (2 s): the follower connects meanwhile.
    app = await start_tool_app(ssrf_allowed_hosts="127.0.0.1", tool_timeout_s=2, research_page_timeout=60)
    api = await sign_up(app, http)
    arguments = json.dumps({"url": site.url("/endless")})
    upstream.script = Script.calling(
        ScriptedCall("fetch_url", arguments, call_id="slow"), then=Script(tokens=["Too ", "slow."])
    )
    async with api.session.post(
        api.base_url + "/chat/stream",
        data=json.dumps({"message": "read it", "tools": ["fetch_url"]}),
        headers=auth(api),
    ) as resp:
        head = await read_events(resp, stop_after=2)
    assert [e.event for e in head] == ["start", "tool_call"]  # the client went away mid-tool
    chat_id = head[0].data["chat_id"]
    resumed = asyncio.ensure_future(follow(api, chat_id, last_event_id=head[1].id))
    assert await until(lambda: site._endless_writers == 1, timeout=10)
    rest = await resumed
    assert rest[0].event == "tool_result" and rest[0].data["call_id"] == "slow"
    result = rest[0].data  # the page so far, cut at the call's time limit
    assert result["ok"] and "slow rivers" in result["content"] and "time limit" in result["content"]
    assert deltas(rest) == "Too slow." and rest[-1].data["status"] == "complete"
    assert all(e.seq > head[1].seq for e in rest)
    # A new follower replays the whole answer, the call included.
    replay = await follow(api, chat_id)
    assert of(replay, "tool_call") == of(head, "tool_call")
    assert of(replay, "tool_result") == of(rest, "tool_result")
    assert await stored_calls(app, api, head) == records(head + rest)


async def test_tools_over_chat_message_and_the_202_path(
    start_tool_app: StartToolApp, http: aiohttp.ClientSession, upstream: FakeUpstream
) -> None:
    app = await start_tool_app()
    api = await sign_up(app, http)
    upstream.script = Script.calling(
        ScriptedCall("current_time", UTC, call_id="m1"), then=Script(tokens=["Noon."])
    )
    answer = await api.post("/chat/message", {"message": "time?", "tools": ["current_time"]})
    assert answer.status == 200, answer.text
    assert answer.json["content"] == "Noon."
    [call] = answer.json["tool_calls"]
    assert call["call_id"] == "m1" and call["name"] == "current_time" and call["ok"] is True
    assert upstream.tool_messages()[0]["content"] == call["content"]
    chat_id = answer.json["chat_id"]
    upstream.script = Script.calling(
        ScriptedCall("current_time", UTC, call_id="m2"), then=Script(tokens=["Again."])
    )
    body = {"message": "and now?", "tools": ["current_time"]}
    accepted = await api.post(f"/api/chats/{chat_id}/messages", body)
    assert accepted.status == 202, accepted.text
    events = await follow(api, chat_id)
    assert [c["call_id"] for c in of(events, "tool_call")] == ["m2"] and deltas(events) == "Again."
    assert await stored_calls(app, api, events) == records(events)


async def test_no_tools_unless_asked(
    start_tool_app: StartToolApp, http: aiohttp.ClientSession, upstream: FakeUpstream
) -> None:
    app = await start_tool_app()
    api = await sign_up(app, http)
    events = await stream(api, {"message": "hi"})
    assert "tools" not in upstream.requests[-1] and not of(events, "tool_call")
    assert await stored_calls(app, api, events) is None


async def test_tools_are_validated_before_anything_is_stored(
    start_tool_app: StartToolApp, http: aiohttp.ClientSession, upstream: FakeUpstream
) -> None:
    app = await start_tool_app()
    api = await sign_up(app, http)
    unknown = await api.post("/chat/stream", {"message": "x", "tools": ["current_time", "nope"]})
    assert unknown.status == 422 and "nope" in unknown.text
    plain = await api.post("/chat/stream", {"message": "x", "model": PLAIN_MODEL, "tools": ["current_time"]})
    assert plain.status == 422 and PLAIN_MODEL in plain.text
    too_many = await api.post("/chat/message", {"message": "x", "tools": [f"t{n}" for n in range(33)]})
    assert too_many.status == 422
    empty_name = await api.post("/chat/message", {"message": "x", "tools": [""]})
    assert empty_name.status == 422
    assert (await api.get("/api/chats")).json["items"] == [] and upstream.requests == []
    # An existing chat whose model takes no tools: 422 naming it, nothing stored.
    upstream.script = Script(tokens=["ok"])
    first = await stream(api, {"message": "hi", "model": PLAIN_MODEL})
    chat_id = first[0].data["chat_id"]
    refused = await api.post(f"/api/chats/{chat_id}/messages", {"message": "x", "tools": ["current_time"]})
    assert refused.status == 422 and PLAIN_MODEL in refused.text
    assert len((await api.get(f"/api/chats/{chat_id}/messages")).json["items"]) == 2


@pytest.mark.both_stores
async def test_resume_mid_tool_on_another_process(
    tmp_path: Path, upstream: FakeUpstream, http: aiohttp.ClientSession, site: SiteServer, backend: Backend
) -> None:
    """Two server processes sharing Redis: the answer (and its call) runs on A; a client
    follows on B, goes away mid-tool and resumes on B with Last-Event-ID."""
    redis_url = require_env("TEST_REDIS_URL", "a Redis server")
    env = {
        **server_env(tmp_path / "data", upstream, REDIS_URL=redis_url),
        "MODELS_FILE": str(models_file(upstream, tmp_path)),
        "SSRF_ALLOWED_HOSTS": "127.0.0.1",
        "TOOL_TIMEOUT_S": "3",
        **backend.env(),
    }
    upstream.script = Script.calling(
        ScriptedCall("fetch_url", json.dumps({"url": site.url("/endless")}), call_id="far"),
        then=Script(tokens=["Read ", "it."]),
    )
    a = await started(ServerProcess.gust(env, free_port()))
    b = await started(ServerProcess.gust(env, free_port()))
    try:
        auth = await login(http, a.url, "far@example.com")
        async with http.post(a.url + "/api/chats", json={}, headers=auth) as resp:
            chat_id = (await resp.json())["id"]
        body = {"message": "read it", "tools": ["fetch_url"]}
        async with http.post(a.url + f"/api/chats/{chat_id}/messages", json=body, headers=auth) as resp:
            assert resp.status == 202, await resp.text()
        async with http.get(b.url + f"/api/chats/{chat_id}/events", headers=auth) as resp:
            head = await read_events(resp, stop_after=2)
        assert [e.event for e in head] == ["start", "tool_call"]
        assert await until(lambda: site._endless_writers == 1, timeout=10)  # the call runs (3 s)
        resume = {**auth, "Last-Event-ID": head[-1].id or ""}
        async with http.get(b.url + f"/api/chats/{chat_id}/events", headers=resume) as resp:
            rest = await read_events(resp)
        events = head + rest
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert rest[0].event == "tool_result" and rest[0].data["call_id"] == "far"
        assert deltas(rest) == "Read it." and rest[-1].data["status"] == "complete"
        async with http.get(a.url + f"/api/chats/{chat_id}", headers=auth) as resp:
            answer = (await resp.json())["messages"][-1]
        assert answer["tool_calls"] == records(events)
    finally:
        for proc in (a, b):
            proc.signal(signal.SIGTERM)
        for proc in (a, b):
            await proc.wait_exit()
            proc.kill()
