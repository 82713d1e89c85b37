"""Every streaming response turns Nagle's algorithm off on its connection (TCP_NODELAY).

With it on, a small write that follows an unacknowledged one waits for the client's delayed
ACK (~40 ms), which made the first token late on reused keep-alive connections. A timing
test would be flaky; the server-side socket option is what makes the difference, so this
reads it on the server's own socket while each streaming route is open. The routes come
from the OpenAPI document: a new streaming route fails here until it is covered below.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest

from tests.openai_api.test_openai_compat import api_key
from tests.support.app_server import RunningApp
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream, Script

STREAMING = ("text/event-stream", "application/x-ndjson")

Request = tuple[str, str, dict[str, str], bytes | None]  # method, path, headers, body
Opener = Callable[[RunningApp, Api, str], Awaitable[Request]]


def streaming_routes(app: RunningApp) -> set[tuple[str, str]]:
    """(method, path template) of every operation whose 200 answer is an event or token stream."""
    found = set()
    for path, item in app.app.openapi["paths"].items():
        for method, op in item.items():
            ok = json.dumps(op.get("responses", {}).get("200", {}))
            if any(kind in ok for kind in STREAMING):
                found.add((method.upper(), path))
    return found


async def chat_stream(app: RunningApp, user: Api, accept: str) -> Request:
    return "POST", "/chat/stream", {"Accept": accept}, json.dumps({"message": "hello"}).encode()


async def chat_events(app: RunningApp, user: Api, accept: str) -> Request:
    created = await user.post("/api/chats", {"title": "followed"})
    assert created.status == 201, created.text
    chat_id = created.json["id"]
    sent = await user.post(f"/api/chats/{chat_id}/messages", {"message": "hello"})
    assert sent.status == 202, sent.text
    return "GET", f"/api/chats/{chat_id}/events", {"Accept": accept}, None


async def completions(app: RunningApp, user: Api, accept: str) -> Request:
    body = {"model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "hello"}]}
    headers = {"Authorization": f"Bearer {await api_key(user)}"}
    return "POST", "/v1/chat/completions", headers, json.dumps(body).encode()


async def user_events(app: RunningApp, user: Api, accept: str) -> Request:
    return "GET", "/api/events", {"Accept": accept}, None


OPENERS: dict[tuple[str, str], Opener] = {
    ("POST", "/chat/stream"): chat_stream,
    ("GET", "/api/chats/{chat_id}/events"): chat_events,
    ("POST", "/v1/chat/completions"): completions,
    ("GET", "/api/events"): user_events,
}


@asynccontextmanager
async def open_stream(
    http: aiohttp.ClientSession, app: RunningApp, user: Api, method: str, path: str,
    headers: dict[str, str], body: bytes | None,
) -> AsyncIterator[aiohttp.ClientResponse]:
    hdrs = {"Authorization": f"Bearer {user.token}", "Content-Type": "application/json", **headers}
    async with http.request(method, app.url + path, headers=hdrs, data=body) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith(STREAMING)
        assert await resp.content.readany()  # the stream is open and has sent its first bytes
        yield resp


def server_nodelay(app: RunningApp, path: str) -> list[int]:
    """TCP_NODELAY of the server-side socket of each open request for `path`."""
    values = []
    for handler in list(app.app.inflight):
        if handler.request.path == path:
            sock = handler.request.connection.stream.socket  # type: ignore[union-attr]
            values.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    return values


async def test_streaming_routes_are_the_ones_covered_here(stream_app: RunningApp) -> None:
    assert streaming_routes(stream_app) == set(OPENERS), "a streaming route: add its opener to OPENERS"


@pytest.mark.parametrize("route", sorted(OPENERS), ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("accept", ["text/event-stream", "application/x-ndjson"])  # SSE and NDJSON
async def test_every_streaming_route_sets_tcp_nodelay(
    route: tuple[str, str], accept: str, stream_app: RunningApp, user: Api, upstream: FakeUpstream,
    http: aiohttp.ClientSession,
) -> None:
    upstream.script = Script(tokens=[f"t{i} " for i in range(40)], delay=0.05)  # open for ~2 s
    method, path, headers, body = await OPENERS[route](stream_app, user, accept)
    async with open_stream(http, stream_app, user, method, path, headers, body):
        assert server_nodelay(stream_app, path) == [1]
