"""The n8n-style webhook adapter against a real local agent server (SSE and JSON answers),
and a webhook model declared in MODELS_FILE used through the app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gust.adapters.llm.sessions import SessionPool
from gust.adapters.llm.webhook import WebhookLLM
from gust.adapters.web.connect import OutboundGuard
from gust.adapters.web.guard import AddressPolicy, AllowList
from gust.domain.errors import UpstreamError
from gust.ports.llm import ChatRequest, Chunk
from tests.streaming.helpers import deltas, stream, user_id, wait_final
from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.client import Api
from tests.support.env import free_port
from tests.support.fake_webhook import FakeWebhook, WebhookScript

TOKEN = "hook-secret"
TOKEN_ENV = "GUST_TEST_AGENT_TOKEN"
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "Status?"},
]


@pytest.fixture
async def webhook() -> AsyncIterator[FakeWebhook]:
    fake = await FakeWebhook(token=TOKEN).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def sessions() -> AsyncIterator[SessionPool]:
    """Sessions whose SSRF guard allows the local fake webhook (SSRF_ALLOWED_HOSTS=127.0.0.1)."""
    guard = OutboundGuard(AddressPolicy(allowed_ports=None, allowed=AllowList.parse("127.0.0.1")))
    pool = SessionPool(connect_timeout=5, guard=guard)
    yield pool
    await pool.close()


def agent(url: str, sessions: SessionPool, token: str | None = TOKEN, **kw: Any) -> WebhookLLM:
    options: dict[str, Any] = {"model": "n8n-agent", "first_token_timeout": 10.0, "idle_timeout": 5.0, **kw}
    return WebhookLLM(url, token, sessions, **options)


async def collect(llm: WebhookLLM) -> list[Chunk]:
    return [c async for c in llm.stream(ChatRequest(model="agent-v1", messages=MESSAGES))]


async def failure(llm: WebhookLLM) -> UpstreamError:
    with pytest.raises(UpstreamError) as info:
        await collect(llm)
    return info.value


def text(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks if c.kind == "delta")


async def test_sse_answer_and_the_request_it_was_sent(webhook: FakeWebhook, sessions: SessionPool) -> None:
    chunks = await collect(agent(webhook.url, sessions))
    assert [c.text for c in chunks if c.kind == "delta"] == ["Agent ", "says ", "hi"]
    assert chunks[-1].kind == "finish" and chunks[-1].finish_reason == "stop"
    assert webhook.auth_headers == [f"Bearer {TOKEN}"]
    assert webhook.requests == [
        {
            "messages": MESSAGES[1:],  # the system prompt travels apart
            "system_prompt": "You are terse.",
            "config": {"model": "agent-v1"},
        }
    ]


@pytest.mark.parametrize("mode", ["json", "n8n-list"])
async def test_plain_json_answers(webhook: FakeWebhook, sessions: SessionPool, mode: Any) -> None:
    webhook.script = WebhookScript(mode=mode)
    chunks = await collect(agent(webhook.url, sessions))
    assert [c.kind for c in chunks] == ["delta", "finish"]
    assert text(chunks) == "Agent says hi"


async def test_status_chunks_while_the_agent_works(webhook: FakeWebhook, sessions: SessionPool) -> None:
    release = asyncio.Event()
    webhook.script = WebhookScript(mode="json", hold=release)
    chunks: list[Chunk] = []
    async for chunk in agent(webhook.url, sessions, status_every=0.05).stream(
        ChatRequest(model="m", messages=MESSAGES)
    ):
        chunks.append(chunk)
        if chunk.kind == "status" and sum(c.kind == "status" for c in chunks) == 2:
            release.set()  # the agent answers only after we saw it being waited for
    assert [c.kind for c in chunks][:2] == ["status", "status"]
    assert chunks[0].text.startswith("waiting for the agent")
    assert text(chunks) == "Agent says hi"


async def test_wrong_token_is_a_clear_auth_error(webhook: FakeWebhook, sessions: SessionPool) -> None:
    error = await failure(agent(webhook.url, sessions, token="wrong"))
    assert error.code == "upstream_auth" and error.retryable is False and error.upstream_status == 403
    assert "token" in error.message
    assert webhook.requests == []


async def test_missing_token_is_refused_too(webhook: FakeWebhook, sessions: SessionPool) -> None:
    error = await failure(agent(webhook.url, sessions, token=None))
    assert error.code == "upstream_auth"
    assert webhook.auth_headers == [None]


async def test_agent_failure_status(webhook: FakeWebhook, sessions: SessionPool) -> None:
    webhook.script = WebhookScript(status=500)
    error = await failure(agent(webhook.url, sessions))
    assert error.code == "upstream_unavailable" and error.retryable is True


async def test_the_agents_own_error_text_stays_in_the_server_log(
    webhook: FakeWebhook, sessions: SessionPool
) -> None:
    secret = "n8n node 'Postgres' failed: password for app@db"
    webhook.script = WebhookScript(status=502, error_message=secret)
    error = await failure(agent(webhook.url, sessions))
    assert error.message == "the agent's webhook is unavailable; try again later (HTTP 502)"
    assert error.provider_message == secret


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("bad-json", "upstream_protocol"),
        ("no-content", "upstream_protocol"),
        ("sse-no-done", "upstream_disconnected"),
    ],
)
async def test_malformed_answers(webhook: FakeWebhook, sessions: SessionPool, mode: Any, code: str) -> None:
    webhook.script = WebhookScript(mode=mode)
    error = await failure(agent(webhook.url, sessions))
    assert error.code == code


async def test_agent_that_never_answers_times_out(webhook: FakeWebhook, sessions: SessionPool) -> None:
    webhook.script = WebhookScript(hold=asyncio.Event())  # never set
    chunks: list[Chunk] = []
    with pytest.raises(UpstreamError) as info:
        async for chunk in agent(webhook.url, sessions, status_every=0.05, first_token_timeout=0.2).stream(
            ChatRequest(model="m", messages=MESSAGES)
        ):
            chunks.append(chunk)
    assert info.value.code == "upstream_timeout"
    assert chunks and all(c.kind == "status" for c in chunks)


async def test_unreachable_agent(sessions: SessionPool) -> None:
    error = await failure(agent(f"http://127.0.0.1:{free_port()}/hook", sessions))
    assert error.code == "upstream_unreachable"


# -- through the app: a webhook model declared in MODELS_FILE ----------------------------------
def models_file(directory: Path, webhook: FakeWebhook) -> Path:
    path = directory / "models.yaml"
    path.write_text(
        "models:\n"
        "  - id: support-agent\n"
        "    provider: webhook\n"
        f"    base_url: {webhook.url}\n"
        "    upstream_model: support-v2\n"
        f"    webhook_token_env: {TOKEN_ENV}\n"
        "    display_name: Support agent (n8n)\n"
    )
    return path


async def signed_in(app: RunningApp, http: aiohttp.ClientSession) -> Api:
    return await app.sign_up(http, "agent@example.com")


async def test_webhook_model_answers_through_the_app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, webhook: FakeWebhook, http: aiohttp.ClientSession
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    app = await start_app(make_settings(tmp_path / "data", models_file=models_file(tmp_path, webhook)))
    try:
        user = await signed_in(app, http)
        models = await user.get("/api/models")
        assert [m["id"] for m in models.json["items"]] == ["support-agent"]
        assert models.json["items"][0]["provider"] == "webhook"
        events = await stream(user, {"message": "Is the service up?"})
        assert deltas(events) == "Agent says hi"
        assert events[-1].data["status"] == "complete"
        assert webhook.requests[-1]["config"] == {"model": "support-v2"}
        assert webhook.requests[-1]["messages"] == [{"role": "user", "content": "Is the service up?"}]
        stored = await wait_final(app, await user_id(user), events[0].data["message_id"])
        assert stored.content == "Agent says hi" and stored.model == "support-agent"
    finally:
        await app.stop()


async def test_invalid_webhook_token_is_a_clear_error_event(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, webhook: FakeWebhook, http: aiohttp.ClientSession
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    app = await start_app(make_settings(tmp_path / "data", models_file=models_file(tmp_path, webhook)))
    try:
        user = await signed_in(app, http)
        events = await stream(user, {"message": "hello?"})
        assert [e.event for e in events] == ["start", "error", "done"]
        error = events[1].data
        assert error["code"] == "upstream_auth" and error["retryable"] is False
        assert error["message"] == "the agent's webhook refused the token"
        assert "not-the-token" not in json.dumps([e.data for e in events])
        assert events[-1].data["status"] == "error"
        stored = await wait_final(app, await user_id(user), events[0].data["message_id"])
        assert stored.status == "error" and stored.error is not None
        assert stored.error["code"] == "upstream_auth"
    finally:
        await app.stop()


async def test_webhook_model_without_its_token_is_not_usable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, webhook: FakeWebhook, http: aiohttp.ClientSession
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    app = await start_app(make_settings(tmp_path / "data", models_file=models_file(tmp_path, webhook)))
    try:
        user = await signed_in(app, http)
        models = await user.get("/api/models")
        assert models.json == {"items": [], "default": None}
        resp = await user.post("/chat/stream", {"message": "hi", "model": "support-agent"})
        assert resp.status == 422 and "support-agent" in resp.json["error"]["message"]
    finally:
        await app.stop()
