"""One admission policy for every path that starts a generation: MAX_ACTIVE_GENERATIONS
(503 + Retry-After), RATE_LIMIT_MESSAGES_PER_MINUTE (429 + Retry-After) and max_tokens,
the same on /chat/stream, /chat/message, /api/chats/{id}/messages, regenerate and /v1
(JSON and streamed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.streaming.helpers import user_id, wait_final
from tests.support.app_server import RunningApp
from tests.support.client import Api, Response
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.plugin import StartApp
from tests.support.wait import until


@dataclass
class Setup:
    app: RunningApp
    api: Api
    key: str
    chat_id: str  # a chat with one finished exchange
    answer_id: str  # its assistant message


Path = Callable[[Setup, dict[str, Any]], Awaitable[Response]]


def v1(stream: bool) -> Path:
    async def call(s: Setup, extra: dict[str, Any]) -> Response:
        body = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        return await s.api.post("/v1/chat/completions", {**body, **extra}, token=s.key)

    return call


PATHS: dict[str, Path] = {
    "chat-stream": lambda s, extra: s.api.post("/chat/stream", {"message": "hi", **extra}),
    "chat-message": lambda s, extra: s.api.post("/chat/message", {"message": "hi", **extra}),
    "chat-messages": lambda s, extra: s.api.post(
        f"/api/chats/{s.chat_id}/messages", {"message": "hi", **extra}
    ),
    "regenerate": lambda s, extra: s.api.post(
        f"/api/chats/{s.chat_id}/messages/{s.answer_id}/regenerate", extra
    ),
    "v1-json": v1(False),
    "v1-stream": v1(True),
}


async def setup(app: RunningApp, http: aiohttp.ClientSession) -> Setup:
    api = await app.sign_up(http, "limits@example.com")
    key = (await api.post("/api/auth/api-keys", {"name": "script"})).json["key"]
    chat = await api.post("/api/chats", {})
    sent = await api.post(f"/api/chats/{chat.json['id']}/messages", {"message": "first"})
    assert sent.status == 202, sent.text
    await wait_final(app, await user_id(api), sent.json["message_id"])
    return Setup(app, api, key, chat.json["id"], sent.json["message_id"])


@asynccontextmanager
async def hub_generation(s: Setup, upstream: FakeUpstream) -> AsyncIterator[None]:
    """A chat answer that keeps running (the upstream goes quiet after one token)."""
    upstream.script = Script(tokens=["a", "b", "c"], hang_after=1)
    chat = await s.api.post("/api/chats", {})
    sent = await s.api.post(f"/api/chats/{chat.json['id']}/messages", {"message": "hold"})
    assert sent.status == 202, sent.text
    yield
    await s.api.post(f"/api/chats/{chat.json['id']}/stop")
    await wait_final(s.app, await user_id(s.api), sent.json["message_id"])


@asynccontextmanager
async def v1_stream(s: Setup, upstream: FakeUpstream) -> AsyncIterator[None]:
    """A /v1 streamed completion that keeps running, read up to its first chunk."""
    upstream.script = Script(tokens=["a", "b", "c"], hang_after=1)
    async with aiohttp.ClientSession() as other:
        body = {"model": "fake-model", "messages": [{"role": "user", "content": "hold"}], "stream": True}
        async with other.post(
            s.app.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {s.key}"}
        ) as resp:
            assert resp.status == 200
            await resp.content.readline()
            yield


OCCUPIERS = {"hub": hub_generation, "v1": v1_stream}


@pytest.mark.parametrize("occupier", list(OCCUPIERS))
@pytest.mark.parametrize("path", list(PATHS))
async def test_every_path_counts_against_max_active_generations(
    start_stream_app: StartApp, upstream: FakeUpstream, path: str, occupier: str
) -> None:
    app = await start_stream_app(max_active_generations=1)
    async with aiohttp.ClientSession() as http:
        s = await setup(app, http)
        async with OCCUPIERS[occupier](s, upstream):
            refused = await PATHS[path](s, {})
            assert refused.status == 503, refused.text
            assert int(refused.headers["Retry-After"]) > 0
        upstream.script = Script()
        # The place is given back (a hung-up /v1 stream notices in the background)...
        generation = app.services.generation
        assert generation is not None
        assert await until(lambda: generation.admission.active == 0, timeout=10)
        # ...and the same path works again.
        again = await PATHS[path](s, {})
        assert again.status in (200, 202), again.text
        if again.status == 202:
            await wait_final(app, await user_id(s.api), again.json["message_id"])


@pytest.mark.parametrize("path", list(PATHS))
async def test_every_path_counts_against_the_per_user_message_rate(
    start_stream_app: StartApp, path: str
) -> None:
    app = await start_stream_app(rate_limit_messages_per_minute=1)
    async with aiohttp.ClientSession() as http:
        s = await setup(app, http)  # its message used the minute's one place
        refused = await PATHS[path](s, {})
        assert refused.status == 429, refused.text
        assert int(refused.headers["Retry-After"]) > 0


@pytest.mark.parametrize("path", list(PATHS))
async def test_every_path_refuses_max_tokens_over_the_models_limit(
    start_stream_app: StartApp, path: str
) -> None:
    app = await start_stream_app()
    async with aiohttp.ClientSession() as http:
        s = await setup(app, http)
        refused = await PATHS[path](s, {"max_tokens": 999_999})
        assert refused.status in (400, 422), refused.text
        assert "max_tokens" in refused.text


async def test_v1_completions_running_together_cannot_exceed_the_limit(
    start_stream_app: StartApp, upstream: FakeUpstream
) -> None:
    app = await start_stream_app(max_active_generations=2)
    upstream.script = Script(tokens=["a", "b"], delay=0.2)
    async with aiohttp.ClientSession() as http:
        s = await setup(app, http)
        answers = await asyncio.gather(*(PATHS["v1-json"](s, {}) for _ in range(5)))
        assert sorted(a.status for a in answers) == [200, 200, 503, 503, 503]
